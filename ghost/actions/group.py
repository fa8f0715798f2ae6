"""Acting on a whole group at once (`stop -g`, `kill -g`), and stopping what has no process.

`stop_group` records every stop request in one write transaction, signals every process group
at once, and waits for all of them together on pidfds: 100 tasks stop in about the time one
does. A queued task is cancelled (it never runs); a task waiting to restart goes back to how its
last attempt ended. Both are decided inside the transaction, so a stop always wins over a
pending start, whichever comes first.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events import types as ev
from events.store import Rows, Store
from ghost.actor import actor
from ghost.errors import USAGE, GhostError
from ghost.process import endfold, identity
from ghost.state.names import check_name
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import describe_end, load
from projections.checkpoint import load_tasks, task_from_rows
from projections.tasks import ENDED, QUEUED_STATUS, RESTARTING, Task

KILL_WAIT = 5.0
MONITOR_WAIT = 5.0
CANCELLED = "cancelled before it started (stopped while queued)"


@dataclass(frozen=True, slots=True)
class GroupResult:
    task: Task
    ok: bool
    error: str = ""
    verb: str = ""  # how it ended, for the one line per task ("exited", "killed", ...)


def in_group(group: str, tasks: Mapping[str, Task]) -> list[Task]:
    check_name(group, "--group")
    return sorted((t for t in tasks.values() if t.group == group),
                  key=lambda t: t.created_seq or t.spawned_seq)


def stoppable(task: Task) -> bool:
    """Live, or just ended with its restart policy not applied yet (its monitor is about to
    decide): a stop recorded now is seen by that decision, so no restart follows."""
    if task.live:
        return True
    return bool(task.policy) and task.status in ENDED and not task.stop \
        and task.gave_up is None \
        and identity.is_alive(task.monitor_pid, task.monitor_start_ticks)


def _stop_events(task: Task, sig: str, timeout: float, force: bool, escalated: bool,
                 who: dict[str, object]) -> list[ev.Event]:
    out = [ev.make(ev.STOP_REQUESTED, task.id, signal=sig, timeout=timeout, force=force,
                   escalated=escalated, actor=who)]
    if task.status == QUEUED_STATUS:
        out.append(ev.make(ev.SPAWN_FAILED, task.id, command=list(task.command), cwd=task.cwd,
                           error=CANCELLED, exit_code=1, actor=who))
    return out


def request_stops(store: Store, tasks: Sequence[Task], sig: int, timeout: float, force: bool,
                  via: str, escalated: bool = False,
                  seen: dict[str, Task] | None = None) -> set[str]:
    """Record stop requests for the live tasks among `tasks` in one transaction; the ids
    recorded (each checked against the view inside the transaction)."""
    who = actor(via)
    name = identity.signal_name(sig)

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        out: list[ev.Event] = []
        for task in tasks:
            now = task_from_rows(views["tasks"], task.id)
            if now is None or not stoppable(now):
                continue
            if escalated and now.stop.get("signal") == "SIGKILL":
                continue
            if seen is not None:  # maybe a later attempt than the caller saw: stop that one
                seen[task.id] = now
            out.extend(_stop_events(now, name, timeout, force, escalated, who))
        return out

    with store_errors():
        return {e.task for e in store.transact(decide)}


def cancel(store: Store, task: Task, force: bool, timeout: float, via: str) -> Task:
    """`stop` of a queued task or of one waiting to restart: nothing to signal."""
    sig = signal.SIGKILL if force else signal.SIGTERM
    if not request_stops(store, [task], sig, timeout, force, via):
        raise GhostError(f"task {task.id} is not running ({describe_end(task)})")
    with store_errors():
        now = load_tasks(store).get(task.id)
    return now if now is not None else task


def _wait_pids(targets: Sequence[tuple[int, int]], timeout: float) -> None:
    """Until every (pid, start ticks) in `targets` is gone, or `timeout`: one poll for all."""
    poller = select.poll()
    fds: dict[int, int] = {}
    try:
        for pid, ticks in targets:
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                continue  # already gone
            if identity.start_ticks(pid) != ticks:
                os.close(fd)
                continue
            fds[fd] = pid
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for fd, _ in poller.poll(left * 1000):
                poller.unregister(fd)
                del fds[fd]
                os.close(fd)
    finally:
        for fd in fds:
            os.close(fd)


def _signal(tasks: Sequence[Task], sig: int) -> None:
    for task in tasks:
        identity.signal_task(task.pid, task.pgid, task.start_ticks, sig)


def _kill_stragglers(tasks: Sequence[Task]) -> None:
    """SIGKILL what is left in the groups of `tasks` (their leaders are gone). A group that no
    longer exists at all (ESRCH from a probe with signal 0) is skipped without the verified
    /proc scan signal_task makes per group: 100 such scans took seconds under load."""
    left = []
    for task in tasks:
        if task.pgid <= 1:
            continue  # never probe our own group (0) or every process (1)
        try:
            os.killpg(task.pgid, 0)  # only a filter: the signal itself is verified
        except ProcessLookupError:
            continue  # no process is in that group: nothing to kill
        except OSError:
            pass  # e.g. EPERM: someone else's group by now; signal_task checks identities
        left.append(task)
    _signal(left, signal.SIGKILL)


def stop_group(group: str, force: bool = False, timeout: float = 10.0, *,
               via: str) -> list[GroupResult]:
    """Stop every live task of `group` at once; one result per task that was live."""
    if timeout < 0:
        raise GhostError(f"invalid --timeout {timeout}: must be 0 or more", USAGE)
    store = open_store(write=True)
    assert store is not None
    chosen = [t for t in in_group(group, load(store)) if stoppable(t)]
    sig = signal.SIGKILL if force else signal.SIGTERM
    seen: dict[str, Task] = {}
    requested = request_stops(store, chosen, sig, timeout, force, via, seen=seen)
    # As recorded with the request: a policy may have started the next attempt meanwhile (in
    # the same transaction as the last one's end), and that is the one to stop.
    running = [seen[t.id] for t in chosen if t.id in requested and seen[t.id].running]
    endfold.mark(store.path, running)  # their waiters leave the ends to us (one transaction)
    _signal(running, sig)
    _wait_pids([(t.pid, t.start_ticks) for t in running], KILL_WAIT if force else timeout)
    stubborn = [t for t in running if identity.is_alive(t.pid, t.start_ticks)]
    if stubborn and not force:
        again = request_stops(store, stubborn, signal.SIGKILL, timeout, force, via, True)
        _signal([t for t in stubborn if t.id in again], signal.SIGKILL)
        _wait_pids([(t.pid, t.start_ticks) for t in stubborn], KILL_WAIT)
    # Each waiter keeps its end in a file the moment it reaped its task: all of them are
    # recorded here in one transaction, so `list` right after is exact without waiting for
    # 100 waiters to import the store and commit one by one.
    endfold.await_ends(store.path, running, MONITOR_WAIT)
    with store_errors():
        endfold.fold(store, running, via)
    _kill_stragglers(running)
    with store_errors():
        now = load(store)
    for task in running:  # recorded: their markers need no fold any more
        after = now.get(task.id)
        if after is None or not after.running or after.attempt != task.attempt:
            endfold.forget(store.path, task.id, task.attempt)
    return [_result(task, now.get(task.id), task.id in requested) for task in chosen]


def _result(before: Task, after: Task | None, requested: bool) -> GroupResult:
    if after is None:  # a queued task, cancelled
        return GroupResult(before, True, verb="cancelled")
    if not requested:
        return GroupResult(after, False, f"not running ({describe_end(after)})")
    if after.running:
        return GroupResult(after, False, f"did not end after SIGKILL (pid {after.pid})")
    if before.status == RESTARTING:
        return GroupResult(after, True, verb="stopped (its pending restart was cancelled)")
    return GroupResult(after, True)  # the caller's word, as `stop` prints it (S0)
