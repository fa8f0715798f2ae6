"""Reading tasks as they really are: the view, checked against the live system.

The view says what was recorded. A task recorded as running whose process and monitor are both
gone (monitor killed, machine rebooted) would stay "running" forever, so every read reconciles:
the first reader to notice appends one `lost` event, guarded inside the write transaction so
that any number of concurrent readers record it exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from events import types as ev
from events.store import Rows, Store
from ghost.actor import actor
from ghost.errors import AmbiguousTask, GhostError, TaskNotFound
from ghost.process import identity
from ghost.state.store import store_errors
from projections.checkpoint import load_tasks, task_from_rows
from projections.tasks import Task, apply

MIN_PREFIX = 4


class Observed(NamedTuple):
    """A task plus what only the live system can tell. (A named tuple, not a dataclass:
    `dataclasses` imports `inspect`, ~5 ms of every `ghost list`.)"""

    task: Task
    unmonitored: bool = False  # running, but its monitor is gone: the end will be `unknown`
    group_left: int = 0  # processes still alive in its group after the leader ended


def describe_end(task: Task) -> str:
    if task.status == "exited":
        return f"exited with code {task.exit_code}"
    if task.status == "killed":
        return f"killed by {task.signal}"
    if task.status == "unknown":
        return f"unknown: {task.lost_reason}" if task.lost_reason else "unknown"
    return task.status


def lost_reason(task: Task, current_boot: str) -> str | None:
    """Why a task recorded as running cannot be running any more, or None if it may be."""
    if task.boot_id and current_boot and task.boot_id != current_boot:
        return "the machine rebooted since the task started"
    if task.running and identity.is_alive(task.pid, task.start_ticks):
        return None
    if identity.is_alive(task.monitor_pid, task.monitor_start_ticks):
        return None  # the monitor is about to record the end (or to start the task)
    if task.status == "queued":
        return "its monitor died before the task could start"
    if task.status == "restarting":
        return "its monitor died while waiting to restart it"
    return "its monitor died, so its end was not observed"


def record_lost(store: Store, task: Task, reason: str, via: str = "reconcile") -> Task:
    """Append `lost` unless someone recorded an end first; returns the task as now recorded.
    A waiter that died after keeping its attempt's end in its end file (ghost.process.endfile)
    gets that exact end recorded instead."""
    from ghost.process import endfold

    kept = endfold.read(store.path, task.id, task.attempt) if task.running else None
    if kept is not None and kept.store_id and kept.store_id != store.store_id:
        kept = None  # a file from another store (data dir created again): not this task's
    event = endfold.event_of(kept, actor(via)) if kept is not None else \
        ev.make(ev.LOST, task.id, reason=reason, actor=actor(via))
    if store.readonly:
        return apply(task, event) or task

    seen: list[Task | None] = [task]

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = seen[0] = task_from_rows(views["tasks"], task.id)
        if now is None or not now.live or now.spawned_seq != task.spawned_seq:
            return ()
        if kept is not None and (not now.running or now.attempt != kept.attempt):
            return ()
        return (event,)

    with store_errors():
        done = store.transact(decide)
    if kept is not None or done:  # recorded, by us or before us: its end file and stop
        endfold.forget(store.path, task.id, task.attempt)  # marker are no longer needed
    if done:
        return apply(task, done[0]) or task
    return seen[0] or task


def reconcile(store: Store, tasks: dict[str, Task]) -> dict[str, Task]:
    current_boot = identity.boot_id()
    for task_id, task in list(tasks.items()):
        if not task.live:
            continue
        reason = lost_reason(task, current_boot)
        if reason is not None:
            tasks[task_id] = record_lost(store, task, reason)
    return tasks


def load(store: Store | None) -> dict[str, Task]:
    """Every task in the view, reconciled with the live system."""
    if store is None:
        return {}
    with store_errors():
        return reconcile(store, load_tasks(store))


def resolve(store: Store | None, ident: str) -> str:
    """The full task id for IDENT: an exact id, else a unique prefix of at least four
    characters, else a task name (the newest task with that name). An id or a unique prefix
    always wins over a name."""
    if store is None:
        raise TaskNotFound(ident)
    exact = store.task_ids(ident, limit=2)
    if ident in exact:
        return ident
    matches = store.task_ids(ident) if len(ident) >= MIN_PREFIX else []
    if len(matches) == 1:
        return matches[0]
    from ghost.state.names import by_name

    with store_errors():
        named = by_name(store, ident)
    if named is not None:
        return named
    if len(matches) > 1:
        raise AmbiguousTask(ident, matches)
    if len(ident) < MIN_PREFIX:
        raise TaskNotFound(ident, f" (no task has this name, and a prefix needs at least "
                                  f"{MIN_PREFIX} characters)")
    raise TaskNotFound(ident)


def get(store: Store | None, ident: str) -> Task:
    """One task from the view, reconciled; explains when it was cleaned or never started."""
    task_id = resolve(store, ident)
    assert store is not None
    with store_errors():
        tasks = load_tasks(store)
    task = tasks.get(task_id)
    if task is None:
        kinds = {e.type for e in store.task_events(task_id) if isinstance(e, ev.Event)}
        note = (" (it was cleaned; `ghost history` still has it)" if ev.CLEANED in kinds
                else " (it failed to start)" if ev.SPAWN_FAILED in kinds else "")
        raise TaskNotFound(task_id, note)
    if task.live:
        reason = lost_reason(task, identity.boot_id())
        if reason is not None:
            task = record_lost(store, task, reason)
    return task


def observe(task: Task) -> Observed:
    """Live details for `status`: a monitor gone missing, a group outliving its leader."""
    if task.running:
        alive = identity.is_alive(task.monitor_pid, task.monitor_start_ticks)
        return Observed(task, unmonitored=not alive)
    if task.boot_id and task.boot_id != identity.boot_id():
        return Observed(task)
    return Observed(task, group_left=len(identity.group_members(task.pgid, task.start_ticks)))


def require_writable(store: Store | None) -> Store:
    if store is None or store.readonly:
        raise GhostError("the event store is read-only; nothing can be recorded")
    return store
