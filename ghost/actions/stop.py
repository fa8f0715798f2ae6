"""`stop` and `kill`: end a task's whole process group, SIGTERM then SIGKILL.

`stop` judges the task by its processes, never by the record alone: it holds a pidfd on the
leader (checked by start time) and looks at the process group, so a slow or frozen monitor can
neither make it escalate for nothing nor make it report a failure. SIGKILL is sent, and
recorded, only when the group is really still alive at the deadline.

Once the group is gone the monitor's record of the end is awaited briefly, woken by the store's
commits and by the monitor's exit (it exits right after recording). If the record is still
missing, `stop` records the end itself from what it saw (the leader's wait status, read from
its zombie, and the moment it died), guarded like `lost`: appended only while the task is still
recorded as running, inside the write transaction, so exactly one end is ever recorded.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Mapping, Sequence

from events import types as ev
from events.store import WAKE, Rows, Store
from ghost.actor import actor
from ghost.errors import USAGE, GhostError
from ghost.process import endfold, identity
from ghost.process.record import end_event, if_running
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import describe_end, get, lost_reason, observe, record_lost
from projections.checkpoint import load_tasks, task_from_rows
from projections.tasks import Task, apply

KILL_WAIT = 5.0  # how long SIGKILL may take to end the group
RECORD_WAIT = 2.0  # how long the monitor may take to record an end `stop` saw itself
MONITOR_WAIT = 10.0  # ... and one it alone knows (it reaped the task before `stop` looked)


def _wait_fds(fds: Sequence[int], deadline: float) -> list[int]:
    """Block until one of `fds` is readable or the deadline passes; the readable ones."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    left = max(0.0, deadline - time.monotonic())
    return [fd for fd, _ in poller.poll(left * 1000)]


def wait_exit(pid: int, ticks: int, timeout: float) -> bool:
    """Block until the process with this identity is gone; False on timeout."""
    fd = identity.pidfd(pid, ticks)
    if fd is None:
        return True
    try:
        return bool(_wait_fds([fd], time.monotonic() + timeout))
    finally:
        os.close(fd)


def _group_gone(task: Task, leader: int | None, deadline: float) -> bool:
    """Wait until the leader has exited and nothing is left in its group; False at deadline."""
    if leader is not None and not _wait_fds([leader], deadline):
        return False
    while members := identity.group_members(task.pgid, task.start_ticks):
        st = identity.read_stat(members[0])
        if st is not None and not wait_exit(st.pid, st.start_ticks,
                                            deadline - time.monotonic()):
            return False
    return True


def _request(store: Store, task: Task, sig: int, timeout: float, force: bool,
             escalated: bool, via: str) -> Task | None:
    """Record a stop request; an escalation is recorded (and sent) by one stopper only. The
    task as it was when the request was recorded (None when it was not): under a restart
    policy that may be a later attempt than the caller saw."""
    event = ev.make(ev.STOP_REQUESTED, task.id, signal=identity.signal_name(sig), timeout=timeout,
                    force=force, escalated=escalated, actor=actor(via))
    seen: list[Task] = []

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        seen.clear()
        now = task_from_rows(views["tasks"], task.id)
        if now is None or not now.running:
            return ()
        if escalated and now.stop.get("signal") == "SIGKILL":
            return ()
        seen.append(now)
        return (event,)

    with store_errors():
        done = store.transact(decide)
    return seen[0] if done and seen else None


def _current(store: Store, task: Task) -> Task:
    with store_errors():
        return load_tasks(store).get(task.id, task)


def _await_record(store: Store, task: Task, status: int | None) -> Task:
    """The task as recorded once its monitor recorded the end, or the deadline passed."""
    now = _current(store, task)
    if not now.running:
        return now
    monitor = identity.pidfd(task.monitor_pid, task.monitor_start_ticks)
    if monitor is None:
        return now  # no monitor left to record anything
    from ghost.process.wake import drain, watch

    commits = watch(os.path.join(store.path, WAKE))  # before looking again: no commit missed
    deadline = time.monotonic() + (RECORD_WAIT if status is not None else MONITOR_WAIT)
    try:
        while True:
            now = _current(store, task)
            if not now.running or time.monotonic() >= deadline:
                return now
            ready = _wait_fds([fd for fd in (monitor, commits) if fd is not None], deadline)
            if monitor in ready:  # it records before it exits: now or never
                return _current(store, task)
            if commits is not None:
                drain(commits)
    finally:
        os.close(monitor)
        if commits is not None:
            os.close(commits)


def _record_end(store: Store, task: Task, status: int | None, seen_ns: int, via: str) -> Task:
    """Record the end `stop` observed, unless someone recorded one first."""
    if status is None:
        reason = lost_reason(task, identity.boot_id())
        if reason is None:  # reaped by a monitor still alive that has not recorded it yet
            raise GhostError(f"task {task.id} has ended, but its monitor (pid "
                             f"{task.monitor_pid}) has not recorded how yet; see `ghost status`")
        return record_lost(store, task, "stopped, but " + reason, via)
    event = end_event(task.id, status, end_ns=seen_ns, who=actor(via))
    if task.attempt > 1:  # the end of this attempt only, as its waiter would record it
        event = event._replace(data={**event.data, "attempt": task.attempt})
    with store_errors():
        done = store.transact(if_running(event, task.attempt))
    return (apply(task, done[0]) or task) if done else _current(store, task)


def stop(ident: str, force: bool = False, timeout: float = 10.0, *, via: str) -> Task:
    """Stop a running task's whole process group: SIGTERM, then SIGKILL after `timeout`."""
    if timeout < 0:
        raise GhostError(f"invalid --timeout {timeout}: must be 0 or more", USAGE)
    store = open_store(write=True)
    task = get(store, ident)
    assert store is not None
    if not task.running:  # queued, or between attempts: cancel the start, nothing to kill
        from ghost.actions.group import cancel, stoppable

        if stoppable(task):
            return cancel(store, task, force, timeout, via)
    if not task.running:
        if observe(task).group_left:  # the leader ended, its group lives on: end the group
            _stop_group(task, force, timeout)
            return task
        raise GhostError(f"task {task.id} is not running ({describe_end(task)})")
    now = _request(store, task, signal.SIGKILL if force else signal.SIGTERM, timeout, force,
                   False, via)
    if now is not None:  # the attempt the request was recorded for (a policy may have
        task = now  # started the next one, in the same transaction as the last one's end)
        endfold.mark(store.path, [task])  # its waiter leaves the end to us (no store import)
    leader = identity.pidfd(task.pid, task.start_ticks)
    try:
        gone = _end_group(store, task, leader, force, timeout, via)
    finally:
        if leader is not None:
            os.close(leader)
    seen_ns = time.time_ns()
    status = identity.exit_status(task.pid, task.start_ticks)  # while still unreaped
    if not gone:
        raise GhostError(f"task {task.id} did not end after SIGKILL (pid {task.pid})")
    settled = endfold.await_ends(store.path, [task], RECORD_WAIT)
    with store_errors():
        endfold.fold(store, [task], via)
    if settled or status is None:  # else its monitor is frozen: what `stop` saw is the end
        task = _await_record(store, task, status)  # at once when the fold recorded it
    else:
        task = _current(store, task)
    attempt = task.attempt
    if task.running:
        task = _record_end(store, task, status, seen_ns, via)
    if not task.running:  # recorded: a waiter thawed later need not wait for a fold
        endfold.forget(store.path, task.id, attempt)
    return task


def _end_group(store: Store, task: Task, leader: int | None, force: bool, timeout: float,
               via: str) -> bool:
    """Signal the group (its stop already requested), escalating only if it outlives
    `timeout`; True once it is gone."""
    sig = signal.SIGKILL if force else signal.SIGTERM
    identity.signal_task(task.pid, task.pgid, task.start_ticks, sig)
    grace = KILL_WAIT if force else timeout
    if _group_gone(task, leader, time.monotonic() + grace):
        return True
    if not force and _request(store, task, signal.SIGKILL, timeout, force, True,
                              via) is not None:
        identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)
    return _group_gone(task, leader, time.monotonic() + KILL_WAIT)


def _stop_group(task: Task, force: bool, timeout: float) -> None:
    first = signal.SIGKILL if force else signal.SIGTERM
    identity.signal_task(task.pid, task.pgid, task.start_ticks, first)
    deadline = time.monotonic() + (0.0 if force else timeout)
    if not _group_gone(task, None, deadline):
        identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)
        _group_gone(task, None, time.monotonic() + KILL_WAIT)
