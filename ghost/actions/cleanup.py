"""`cleanup`: forget finished tasks (the history keeps them) and delete their logs."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events import types as ev
from events.store import Rows
from ghost import datadir
from ghost.actor import actor
from ghost.errors import USAGE, GhostError
from ghost.process import endfile
from ghost.state import specs
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import load
from projections.checkpoint import task_from_rows
from projections.tasks import RUNNING, STATUSES, Task


@dataclass(frozen=True, slots=True)
class Cleanup:
    tasks: list[Task]
    dry_run: bool


def cleanup(days: float = 30, everything: bool = False, status: str = "all",
            dry_run: bool = False, *, via: str, task: str | None = None,
            group: str | None = None) -> Cleanup:
    """Remove finished tasks (older than `days`, or all) from the views and delete their logs.

    `task` (a full id) limits it to that one task (the TUI's "clean up the selected task")."""
    if days < 0:
        raise GhostError(f"invalid --days {days:g}: must be 0 or more", USAGE)
    if status == RUNNING:
        raise GhostError("Cannot cleanup running tasks")  # S0's words; stop them first
    if status not in (*STATUSES, "all"):
        raise GhostError(f"invalid --status {status!r} for cleanup: choose exited, killed, "
                         "unknown or all", USAGE)
    store = open_store(write=False)  # with nothing to clean, create nothing
    cutoff = time.time_ns() - int(days * 86400e9)
    chosen = [t for t in load(store).values()
              if not t.running and (status == "all" or t.status == status)
              and (everything or (t.finished_ns or t.started_ns) <= cutoff)
              and (task is None or t.id == task)
              and (group is None or t.group == group)]
    chosen.sort(key=lambda t: t.spawned_seq)
    if dry_run or not chosen:
        return Cleanup(chosen, dry_run)
    store = open_store(write=True)
    assert store is not None
    who = actor(via)
    logs = datadir.logs_dir()

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        out = []
        for one in chosen:
            now = task_from_rows(views["tasks"], one.id)
            if now is not None and not now.running:
                out.append(ev.make(ev.CLEANED, one.id, log_removed=_is_our_log(one, logs),
                                   actor=who))
        return out

    with store_errors():
        done = store.transact(decide)
    cleaned = {e.task for e in done}
    base = os.path.dirname(logs)
    for one in chosen:
        if one.id in cleaned:
            specs.delete(base, one.id)  # the launch spec (env values) goes with the task
        if one.id in cleaned and _is_our_log(one, logs):
            from ghost.state.logindex import other_pieces  # index, rotated pieces (--log-max)

            for path in (one.log_path, *other_pieces(one.log_path)):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        if one.id in cleaned:  # a monitor killed before it removed its inbox socket
            _remove_stale_inbox(base, one.id)
    endfile.discard_tasks(store.path, cleaned)  # ends a killed waiter left behind
    return Cleanup([t for t in chosen if t.id in cleaned], dry_run)


def _remove_stale_inbox(base: str, task_id: str) -> None:
    import stat

    from ghost.process.inbox import socket_path

    path = socket_path(base, task_id)
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _is_our_log(task: Task, logs: str) -> bool:
    """Only ever delete a file ghost made: inside the logs dir, named after the task."""
    return (os.path.dirname(task.log_path) == logs
            and os.path.basename(task.log_path) == f"{task.id}.log"
            and os.path.lexists(task.log_path))
