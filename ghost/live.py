"""Following tasks as they run: their output, the task list, and their ends. Never prints.

Everything here is pushed, not polled: a follower sleeps in `events.follow.wakeups` until
inotify reports a write to a task's log file or to the store's wake file (touched after every
commit), with a one-second wake-up as a safety net. Ends of tasks are learnt from the event log;
the safety-net wake-up also reconciles tasks whose monitor died, so nothing ever waits forever
on a task whose end will never be recorded.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from events.store import Store
from events.types import Event
from ghost import proc
from ghost.errors import USAGE, GhostError, TaskNotFound
from ghost.logs import open_log, tail_offset
from ghost.state import open_store, store_errors
from ghost.tasks import get, lost_reason, record_lost, resolve
from projections.tasks import Task, apply

READ_CHUNK = 1 << 16  # one pread; what a follower holds in memory per task at most
ROUND_BYTES = 1 << 20  # per task per round, so one chatty task cannot starve the others
LINE_LIMIT = 1 << 16  # with prefixes, a partial line longer than this is printed in pieces
SHORT_ID = 8
RECONCILE_EVERY = 1.0  # seconds between checks of running tasks against the live system
REDRAW_EVERY = 0.05  # a watched list is re-read at most 20 times a second, however busy


@dataclass(frozen=True, slots=True)
class WaitResult:
    """The waited-for tasks in the order given; `timed_out` when some were still running."""

    tasks: list[Task]
    timed_out: bool

    @property
    def running(self) -> list[Task]:
        return [t for t in self.tasks if t.running]


def short_id(task_id: str) -> str:
    return task_id[:SHORT_ID]


def _interrupted() -> KeyboardInterrupt:
    # watchfiles swallows the KeyboardInterrupt of SIGINT and reports it; give it back.
    return KeyboardInterrupt()


# -- following the end of tasks ------------------------------------------------------------

class _Ends:
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
        return any(t.running for t in self.tasks.values())

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
        boot = proc.boot_id()
        changed = False
        for task_id, task in self.tasks.items():
            if task.running:
                reason = lost_reason(task, boot)
                if reason is not None:
                    self.tasks[task_id] = record_lost(self.store, task, reason)
                    changed = True
        return changed

    def ordered(self) -> list[Task]:
        return [self.tasks[task_id] for task_id in self.order]


def _store_for(idents: Sequence[str]) -> Store:
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
    store = _store_for(idents)
    ends = _Ends(store, idents)
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
        raise _interrupted() from None
    # Stopped by the deadline: one last look, so an end committed just now still counts.
    ends.catch_up()
    return WaitResult(ends.ordered(), ends.pending)


def exit_status(task: Task) -> int:
    """A shell's view of how a task ended: its code, 128+signal when killed, 1 when unknown."""
    if task.status == "exited" and task.exit_code is not None:
        return task.exit_code
    if task.status == "killed" and task.signal:
        number = proc.signal_number(task.signal)
        return 128 + number if number else 1
    return 1


def combined_status(tasks: Sequence[Task]) -> int:
    """The first non-zero exit status in argument order, or 0 when every task succeeded."""
    for task in tasks:
        status = exit_status(task)
        if status:
            return status
    return 0


# -- following output ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    """Bytes a task wrote. With `lines`, whole lines only (the last one may lack a newline
    only when it is a final partial line or a piece of an over-long line)."""

    task_id: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Ended:
    """The task has ended and all its output has been delivered."""

    task: Task


@dataclass(slots=True)
class _Log:
    task_id: str
    path: str
    fd: int
    offset: int
    partial: bytearray = field(default_factory=bytearray)


def _open_logs(tasks: Sequence[Task], tail: int | None) -> list[_Log]:
    logs: list[_Log] = []
    try:
        for task in tasks:
            fd = open_log(task.log_path)
            logs.append(_Log(task.id, task.log_path, fd, 0))
            logs[-1].offset = 0 if tail is None else tail_offset(fd, tail)
    except BaseException:
        for log in logs:
            os.close(log.fd)
        raise
    return logs


def _read_round(log: _Log) -> Iterator[bytes]:
    """New bytes of one log, up to ROUND_BYTES; a truncated log is read again from the start."""
    if os.fstat(log.fd).st_size < log.offset:
        log.offset = 0
    budget = ROUND_BYTES
    while budget > 0:
        data = os.pread(log.fd, min(READ_CHUNK, budget), log.offset)
        if not data:
            return
        log.offset += len(data)
        budget -= len(data)
        yield data


def _has_more(log: _Log) -> bool:
    return os.fstat(log.fd).st_size > log.offset


def _whole_lines(log: _Log, data: bytes) -> bytes:
    """Complete lines of `data` (after what was held back); the rest is kept in `log.partial`."""
    cut = data.rfind(b"\n") + 1
    if cut == 0:
        log.partial += data
        if len(log.partial) < LINE_LIMIT:
            return b""
        piece = bytes(log.partial)  # an over-long line is delivered in pieces
        log.partial.clear()
        return piece
    out = bytes(log.partial) + data[:cut]
    log.partial[:] = data[cut:]
    return out


def follow_output(idents: Sequence[str], tail: int | None = None, lines: bool | None = None,
                  stop: Callable[[], bool] | None = None) -> Iterator[Output | Ended]:
    """Output of the tasks as it is written, then `Ended` for each once it ended.

    Starts with what is already there (everything, or the last `tail` lines). With `lines`
    (default: when following several tasks) only whole lines are yielded, so the output of
    different tasks never mixes inside a line. Returns once every task has ended and all of
    its output has been yielded, or once `stop()` turns true (checked on wake-ups, so within
    about a second: calling it on every watcher step would cost an idle follower CPU).
    Memory stays bounded whatever the tasks write.
    """
    store = _store_for(idents)
    ends = _Ends(store, idents)
    unique = list({t.id: t for t in ends.ordered()}.values())  # `log -f A A` follows A once
    whole = len(unique) > 1 if lines is None else lines
    logs = _open_logs(unique, tail)
    try:
        yield from _follow(store, ends, logs, whole, stop)
    finally:
        for log in logs:
            os.close(log.fd)


def _follow(store: Store, ends: _Ends, logs: list[_Log], whole: bool,
            stop: Callable[[], bool] | None) -> Iterator[Output | Ended]:
    from events.follow import Interrupted, wake_path, wakeups

    active = list(logs)
    watched = [wake_path(store.path), *(log.path for log in logs)]
    wake = wakeups(watched)
    try:
        while True:
            # Learn of ends before reading: output read afterwards is complete for them.
            ended = {tid for tid, task in ends.tasks.items() if not task.running}
            more = False
            for log in active:
                for data in _read_round(log):
                    chunk = _whole_lines(log, data) if whole else data
                    if chunk:
                        yield Output(log.task_id, chunk)
                more = more or _has_more(log)
            for log in [lg for lg in active if lg.task_id in ended]:
                if _has_more(log):
                    continue  # more than one round left: finish it first
                if log.partial:
                    yield Output(log.task_id, bytes(log.partial))
                    log.partial.clear()
                active.remove(log)
                yield Ended(ends.tasks[log.task_id])
            if not active:
                return
            if more:
                ends.catch_up()
                continue
            changed = next(wake)
            if stop is not None and stop():
                return
            ends.update(changed)
    except Interrupted:
        raise _interrupted() from None
    finally:
        wake.close()


# -- following the task list ---------------------------------------------------------------

def _existing_ancestor(path: str) -> str:
    while not os.path.isdir(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _wait_for_store(stop: Callable[[], bool] | None) -> Store | None:
    """The store, once some task has created it (None if stopped first); woken by changes
    to the nearest directory on the way to it."""
    from events.follow import Interrupted, wakeups
    from ghost import paths

    while True:
        store = open_store(write=False)
        if store is not None:
            return store
        near = _existing_ancestor(paths.store_dir())
        try:
            # One change (or the 1 s safety net), then look again.
            next(wakeups([near]))
            if stop is not None and stop():
                return None
        except Interrupted:
            raise _interrupted() from None


def watch_tasks(status: str = "all",
                stop: Callable[[], bool] | None = None) -> Iterator[list[Task]]:
    """The task list (as `ghost list` shows it), again each time it changes, until `stop()`
    (checked on wake-ups: at least once a second).

    The first listing comes at once (empty while no task was ever started); later ones only
    when a commit, or a reconciliation on the one-second safety-net wake-up, changed it.
    """
    from events.follow import Interrupted, follow
    from ghost.views import listing

    shown = listing(status)
    yield shown
    store = _wait_for_store(stop)
    if store is None:
        return
    read_at = time.monotonic()
    try:
        for _ in follow(store):
            if stop is not None and stop():
                return
            # Under a burst of commits (100 tasks started at once), let them pile up briefly
            # instead of re-reading the whole view for each; the next read sees them all.
            time.sleep(max(0.0, read_at + REDRAW_EVERY - time.monotonic()))
            read_at = time.monotonic()
            now = listing(status)  # reconciles running tasks with the live system too
            if now != shown:
                shown = now
                yield shown
    except Interrupted:
        raise _interrupted() from None
