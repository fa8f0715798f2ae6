"""`stop` and `kill`: end a task's whole process group, SIGTERM then SIGKILL.

`stop` waits on pidfds, not timers: the kernel wakes it when the task's leader exits, and again
when its monitor exits, which the monitor does right after recording the end. So a task that
obeys SIGTERM is reported stopped within a few milliseconds, with its exact end.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Mapping, Sequence

from events import types as ev
from events.store import Rows, Store
from ghost.actor import actor
from ghost.errors import USAGE, GhostError
from ghost.process import identity
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import describe_end, get, lost_reason, observe, record_lost
from projections.checkpoint import load_tasks, task_from_rows
from projections.tasks import Task

KILL_WAIT = 5.0  # how long SIGKILL may take to be reported
MONITOR_WAIT = 5.0  # how long the monitor may take to record an end it has seen


def wait_exit(pid: int, ticks: int, timeout: float) -> bool:
    """Block until the process with this identity is gone; False on timeout."""
    try:
        fd = os.pidfd_open(pid)
    except (ProcessLookupError, OSError):
        return True
    try:
        if identity.start_ticks(pid) != ticks:
            return True
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if poller.poll(left * 1000):
                return True
    finally:
        os.close(fd)


def _wait_group_gone(task: Task, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while identity.group_members(task.pgid, task.start_ticks):
        if time.monotonic() >= deadline:
            return False
        members = identity.group_members(task.pgid, task.start_ticks)
        if members:
            st = identity.read_stat(members[0])
            if st is not None:
                wait_exit(st.pid, st.start_ticks, max(0.0, deadline - time.monotonic()))
    return True


def _request(store: Store, task: Task, sig: int, timeout: float, force: bool,
             escalated: bool, via: str) -> bool:
    """Record a stop request; an escalation is recorded (and sent) by one stopper only."""
    event = ev.make(ev.STOP_REQUESTED, task.id, signal=identity.signal_name(sig), timeout=timeout,
                    force=force, escalated=escalated, actor=actor(via))

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], task.id)
        if now is None or not now.running:
            return ()
        if escalated and now.stop.get("signal") == "SIGKILL":
            return ()
        return (event,)

    with store_errors():
        return bool(store.transact(decide))


def _current(store: Store, task: Task) -> Task:
    with store_errors():
        return load_tasks(store).get(task.id, task)


def _await_end(store: Store, task: Task, timeout: float) -> Task:
    """Wait until the end of `task` is recorded, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    if wait_exit(task.pid, task.start_ticks, timeout):
        wait_exit(task.monitor_pid, task.monitor_start_ticks,
                  max(MONITOR_WAIT, deadline - time.monotonic()))
    now = _current(store, task)
    if now.running:
        reason = lost_reason(now, identity.boot_id())
        if reason is not None:
            now = record_lost(store, now, "stopped, but " + reason)
    return now


def stop(ident: str, force: bool = False, timeout: float = 10.0, *, via: str) -> Task:
    """Stop a running task's whole process group: SIGTERM, then SIGKILL after `timeout`."""
    if timeout < 0:
        raise GhostError(f"invalid --timeout {timeout}: must be 0 or more", USAGE)
    store = open_store(write=True)
    task = get(store, ident)
    assert store is not None
    if not task.running:
        if observe(task).group_left:  # the leader ended, its group lives on: end the group
            _stop_group(task, force, timeout)
            return task
        raise GhostError(f"task {task.id} is not running ({describe_end(task)})")
    sig = signal.SIGKILL if force else signal.SIGTERM
    _request(store, task, sig, timeout, force, False, via)
    identity.signal_task(task.pid, task.pgid, task.start_ticks, sig)
    task = _await_end(store, task, KILL_WAIT if force else timeout)
    if task.running and not force:
        if _request(store, task, signal.SIGKILL, timeout, force, True, via):
            identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)
        task = _await_end(store, task, KILL_WAIT)
    if task.running:
        raise GhostError(f"task {task.id} did not end after SIGKILL (pid {task.pid})")
    identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)  # stragglers
    return task


def _stop_group(task: Task, force: bool, timeout: float) -> None:
    first = signal.SIGKILL if force else signal.SIGTERM
    identity.signal_task(task.pid, task.pgid, task.start_ticks, first)
    if not _wait_group_gone(task, 0.0 if force else timeout):
        identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)
        _wait_group_gone(task, KILL_WAIT)
