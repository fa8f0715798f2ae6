"""`log -f` and `list --watch`: following tasks' output and the task list. Never prints.

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
from ghost.actions.wait import TaskEnds, interrupted, store_for
from ghost.state.logs import open_task_log, tail_offset
from ghost.state.store import open_store
from projections.tasks import Task

READ_CHUNK = 1 << 16  # one pread; what a follower holds in memory per task at most
ROUND_BYTES = 1 << 20  # per task per round, so one chatty task cannot starve the others
LINE_LIMIT = 1 << 16  # with prefixes, a partial line longer than this is printed in pieces
REDRAW_EVERY = 0.05  # a watched list is re-read at most 20 times a second, however busy


# -- following output ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Output:
    """Bytes a task wrote. With `lines`, whole lines only (the last one may lack a newline
    only when it is a final partial line or a piece of an over-long line)."""

    task_id: str
    data: bytes
    offset: int = -1  # without `lines`: where `data` starts in its log file (0 after a rotation)


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


def _open_logs(tasks: Sequence[Task], tail: int | None, start: int | None = None) -> list[_Log]:
    logs: list[_Log] = []
    try:
        for task in tasks:
            path, fd = open_task_log(task.id)  # the current data dir's, not the stored path
            logs.append(_Log(task.id, path, fd, 0))
            if start is not None:  # a caller that already read up to here (the TUI's tail)
                logs[-1].offset = start
            else:
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
            if _rotated(log):  # --log-max: this piece is drained, go on in the new file
                continue
            return
        log.offset += len(data)
        budget -= len(data)
        yield data


def _rotated(log: _Log) -> bool:
    """True when a new file took the log's path (--log-max rotation) and `log` now reads it.
    Called at the end of the old file: nothing is written to it once renamed, but what came
    just before the rename is read first (the caller reads again and comes back here)."""
    if os.fstat(log.fd).st_size > log.offset:
        return True
    from ghost.state.logindex import next_piece

    fd = next_piece(log.path, log.fd)
    if fd is None:
        return False
    os.close(log.fd)
    log.fd, log.offset = fd, 0
    return True


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
                  stop: Callable[[], bool] | None = None,
                  start: int | None = None) -> Iterator[Output | Ended]:
    """Output of the tasks as it is written, then `Ended` for each once it ended.

    Starts with what is already there (everything, or the last `tail` lines). With `lines`
    (default: when following several tasks) only whole lines are yielded, so the output of
    different tasks never mixes inside a line. Returns once every task has ended and all of
    its output has been yielded, or once `stop()` turns true (checked on wake-ups, so within
    about a second: calling it on every watcher step would cost an idle follower CPU).
    Memory stays bounded whatever the tasks write. `start` (a byte offset, instead of `tail`)
    resumes where an earlier bounded read (`query.log_tail`) ended, with no gap or overlap.
    """
    store = store_for(idents)
    ends = TaskEnds(store, idents)
    unique = list({t.id: t for t in ends.ordered()}.values())  # `log -f A A` follows A once
    whole = len(unique) > 1 if lines is None else lines
    logs = _open_logs(unique, tail, start)
    try:
        yield from _follow(store, ends, logs, whole, stop)
    finally:
        for log in logs:
            os.close(log.fd)


def _follow(store: Store, ends: TaskEnds, logs: list[_Log], whole: bool,
            stop: Callable[[], bool] | None) -> Iterator[Output | Ended]:
    from events.follow import Interrupted, wake_path, wakeups

    active = list(logs)
    watched = [wake_path(store.path), *(log.path for log in logs)]
    wake = wakeups(watched)
    rotated = False
    try:
        while True:
            # Learn of ends before reading: output read afterwards is complete for them.
            ended = {tid for tid, task in ends.tasks.items() if not task.running}
            more = False
            files = {log.task_id: log.fd for log in active}  # a rotation swaps the fd
            for log in active:
                for data in _read_round(log):
                    chunk = _whole_lines(log, data) if whole else data
                    if chunk:
                        yield Output(log.task_id, chunk, -1 if whole else log.offset - len(data))
                more = more or _has_more(log)
            rotated = rotated or any(files.get(log.task_id) != log.fd for log in active)
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
            if rotated:
                # A --log-max rotation: inotify still watches the renamed file, so watch the
                # new one, else only the 1 s safety net would wake us for its writes.
                wake.close()
                wake = wakeups([wake_path(store.path), *(log.path for log in active)])
                rotated = False
            changed = next(wake)
            if stop is not None and stop():
                return
            ends.update(changed)
    except Interrupted:
        raise interrupted() from None
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
    from ghost import datadir

    while True:
        store = open_store(write=False)
        if store is not None:
            return store
        near = _existing_ancestor(datadir.store_dir())
        try:
            # One change (or the 1 s safety net), then look again.
            next(wakeups([near]))
            if stop is not None and stop():
                return None
        except Interrupted:
            raise interrupted() from None


def _may_have_ended(tasks: list[Task]) -> bool:
    """Whether a task shown as running may have ended unrecorded (its process and monitor
    gone): only then is the whole view worth reading again without a commit (it costs ~17 ms
    with 1,000 tasks, once a second; this check costs microseconds per running task)."""
    from ghost.process import identity
    from ghost.state.tasks import lost_reason

    boot = identity.boot_id()
    return any(t.running and lost_reason(t, boot) is not None for t in tasks)


def watch_tasks(status: str = "all",
                stop: Callable[[], bool] | None = None) -> Iterator[list[Task]]:
    """The task list (as `ghost list` shows it), again each time it changes, until `stop()`
    (checked on wake-ups: at least once a second).

    The first listing comes at once (empty while no task was ever started); later ones only
    when a commit, or a reconciliation on the one-second safety-net wake-up, changed it.
    """
    from events.follow import Interrupted, follow
    from ghost.actions.query import listing

    shown = listing(status)
    yield shown
    store = _wait_for_store(stop)
    if store is None:
        return
    read_at = time.monotonic()
    try:
        for batch in follow(store):
            if stop is not None and stop():
                return
            if not batch and status == "all" and not _may_have_ended(shown):
                continue  # the safety net woke us, nothing was committed, all are alive
            # Under a burst of commits (100 tasks started at once), let them pile up briefly
            # instead of re-reading the whole view for each; the next read sees them all.
            time.sleep(max(0.0, read_at + REDRAW_EVERY - time.monotonic()))
            read_at = time.monotonic()
            now = listing(status)  # reconciles running tasks with the live system too
            if now != shown:
                shown = now
                yield shown
    except Interrupted:
        raise interrupted() from None
