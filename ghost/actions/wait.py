"""`wait`: block until tasks end, learning of their ends from the event log. Never prints.

A waiter sleeps in `events.follow.wakeups` until a commit touches the store's wake file, with a
one-second wake-up as a safety net that also reconciles tasks whose monitor died, so nothing
ever waits forever on a task whose end will never be recorded.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from events.store import Store
from events.types import Event
from ghost.errors import USAGE, GhostError, TaskNotFound
from ghost.process import identity
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import get, lost_reason, record_lost, resolve
from projections.tasks import Task, apply

SHORT_ID = 8
RECONCILE_EVERY = 1.0  # seconds between checks of running tasks against the live system


@dataclass(frozen=True, slots=True)
class WaitResult:
    """The waited-for tasks in the order given; `timed_out` when some were still running."""

    tasks: list[Task]
    timed_out: bool

    @property
    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.live]


def short_id(task_id: str) -> str:
    return task_id[:SHORT_ID]


def interrupted() -> KeyboardInterrupt:
    # watchfiles swallows the KeyboardInterrupt of SIGINT and reports it; give it back.
    return KeyboardInterrupt()


# -- following the end of tasks ------------------------------------------------------------

class TaskEnds:
    """The tasks being watched, kept current from the event log (and reconciled)."""

    def __init__(self, store: Store, idents: Sequence[str]) -> None:
        self.store = store
        ids = [resolve(store, ident) for ident in idents]
        # Read the log position before the tasks, so no end committed in between is missed.
        with store_errors():
            self.after = store.last_seq()
        self.tasks: dict[str, Task] = {task_id: get(store, task_id) for task_id in ids}
        self.order = ids
        self.checked = time.monotonic()

    @property
    def pending(self) -> bool:
        return any(t.live for t in self.tasks.values())

    def catch_up(self) -> bool:
        """Apply events committed since the last look; True when any watched task changed."""
        with store_errors():
            batch = self.store.read(self.after)
        changed = False
        for event in batch:
            self.after = event.seq
            if not isinstance(event, Event) or not event.known:
                continue
            old = self.tasks.get(event.task)
            if old is None:
                continue
            new = apply(old, event)
            if new is None and old.live:  # cleaned, or queued and never to start: it ended
                new = old._replace(status="unknown", pid=old.pid,
                                   lost_reason=str(event.get("error") or "it was cleaned up"))
            if new is not None and new is not old:  # None: cleaned, and so already ended
                self.tasks[event.task] = new
                changed = True
        return changed

    def update(self, woken_by_change: bool) -> None:
        """After a wake-up: new events, and (at most once a second) a look at the system."""
        self.catch_up()
        due = time.monotonic() - self.checked >= RECONCILE_EVERY
        if self.pending and (due or not woken_by_change):
            self.reconcile()

    def reconcile(self) -> bool:
        """Record `lost` for running tasks whose process and monitor are both gone."""
        self.checked = time.monotonic()
        boot = identity.boot_id()
        changed = False
        for task_id, task in self.tasks.items():
            if task.live:
                reason = lost_reason(task, boot)
                if reason is not None:
                    self.tasks[task_id] = record_lost(self.store, task, reason)
                    changed = True
        return changed

    def ordered(self) -> list[Task]:
        return [self.tasks[task_id] for task_id in self.order]


def store_for(idents: Sequence[str]) -> Store:
    if not idents:
        raise GhostError("no task id given", USAGE)
    store = open_store(write=False)
    if store is None:  # nothing was ever recorded
        raise TaskNotFound(idents[0])
    return store


def wait_for_end(idents: Sequence[str], timeout: float | None) -> WaitResult:
    """Block until every task in `idents` (ids or unique prefixes) has ended, or `timeout`.

    Tasks that already ended return at once. Woken by commits to the event log; every second
    the running tasks are also checked against the live system, so a task whose monitor died
    is recorded `unknown` instead of being waited for forever.
    """
    store = store_for(idents)
    ends = TaskEnds(store, idents)
    if not ends.pending:
        return WaitResult(ends.ordered(), False)
    deadline = None if timeout is None else time.monotonic() + timeout

    def expired() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    from events.follow import Interrupted, wake_path, wakeups

    try:
        # Without a deadline there is nothing to check on each watcher step.
        for changed in wakeups([wake_path(store.path)],
                               stop=expired if deadline is not None else None):
            ends.update(changed)
            if not ends.pending:
                return WaitResult(ends.ordered(), False)
    except Interrupted:
        raise interrupted() from None
    # Stopped by the deadline: one last look, so an end committed just now still counts.
    ends.catch_up()
    return WaitResult(ends.ordered(), ends.pending)


def exit_status(task: Task) -> int:
    """A shell's view of how a task ended: its code, 128+signal when killed, 1 when unknown."""
    if task.status == "exited" and task.exit_code is not None:
        return task.exit_code
    if task.status == "killed" and task.signal:
        number = identity.signal_number(task.signal)
        return 128 + number if number else 1
    return 1


def combined_status(tasks: Sequence[Task]) -> int:
    """The first non-zero exit status in argument order, or 0 when every task succeeded."""
    for task in tasks:
        status = exit_status(task)
        if status:
            return status
    return 0


def group_ids(group: str | None, idents: Sequence[str]) -> list[str]:
    """`wait -g GROUP`: the ids of the group's tasks (a task id list and -g are exclusive)."""
    if group is None or idents:
        raise GhostError("give task ids or -g GROUP (one of them)", USAGE)
    from ghost.state.names import check_name
    from ghost.state.tasks import load

    check_name(group, "--group")
    ids = [t.id for t in load(open_store(write=False)).values() if t.group == group]
    if not ids:
        raise GhostError(f"no tasks in group {group}")
    return ids
