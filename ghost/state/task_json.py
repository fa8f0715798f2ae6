"""A task as JSON: the shape of `--json`, of MCP results and of the HTTP API (one for all)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `ghost run` renders without loading the store's modules
    from ghost.actions.run import Started
    from ghost.state.tasks import Observed
    from projections.tasks import Task


def rfc3339(ns: int | None) -> str | None:
    if ns is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def task(task: Task, observed: Observed | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": task.id,
        "pid": task.pid,
        "status": task.status,
        "command": list(task.command),
        "cwd": task.cwd,
        "started_at": rfc3339(task.started_ns),
        "finished_at": rfc3339(task.finished_ns),
        "exit_code": task.exit_code,
        "signal": task.signal,
        "log_path": task.log_path,
        "name": task.name or None,
        "group": task.group,
        "attempt": task.attempt,
        "restarts": task.restarts,
        "policy": dict(task.policy) or None,
    }
    if task.status == "restarting":
        data["next_restart_at"] = rfc3339(task.next_restart_ns)
        data["restart_reason"] = task.restart_reason
    if task.gave_up is not None:
        data["gave_up_after"] = task.gave_up
    if task.after:
        data["after"] = list(task.after)
        data["after_any"] = task.after_any
    if task.lost_reason:
        data["reason"] = task.lost_reason
    if task.rusage:
        data["rusage"] = dict(task.rusage)
    if task.io:
        data["io"] = dict(task.io)
    if task.log_error:
        data["log_write_failed"] = task.log_error
    if observed is not None:
        data["unmonitored"] = observed.unmonitored
        data["group_processes"] = observed.group_left
    return data


def started(started: Started) -> dict[str, Any]:
    data = {"id": started.id, "pid": started.pid, "status": started.status,
            "command": list(started.command), "cwd": started.cwd,
            "started_at": rfc3339(started.started_ns or None), "finished_at": None,
            "exit_code": None, "signal": None, "log_path": started.log_path,
            "name": started.name or None, "group": started.group}
    if started.existing:  # run --key: the task that has the key; nothing was started
        data["existing"] = True
    return data
