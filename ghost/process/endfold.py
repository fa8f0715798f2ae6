"""Folding the end files waiters wrote (ghost.process.endfile) into the event log.

`stop`, `stop -g` and the reconciling reader use this: every end found is appended in ONE
write transaction, each only while its attempt is still recorded as running (so an end the
waiter recorded itself, or another folder did, is never recorded twice), and only into the
store the attempt was started in. The files (and the stop markers) are deleted once the end is
recorded; a file that does not parse is treated as absent (and left to the waiter, if alive).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from events import types as ev
from events.store import Rows, Store
from ghost.actor import actor
from ghost.process.endfile import MAGIC, STOP, discard, name, open_dir
from ghost.process.record import end_event
from projections.checkpoint import task_from_rows
from projections.tasks import Task

MAX_SIZE = 512


class Usage(NamedTuple):
    ru_utime: float
    ru_stime: float
    ru_maxrss: int


class Ended(NamedTuple):
    task: str
    attempt: int
    store_id: str
    status: int
    end_ns: int
    usage: Usage


def parse(data: bytes) -> Ended | None:
    """The end in one file's bytes; None unless it is complete and well formed."""
    if not data.endswith(b"\n") or len(data) > MAX_SIZE:
        return None
    parts = data.decode("ascii", errors="replace").split()
    if len(parts) != 9 or parts[0] != MAGIC:
        return None
    try:
        attempt, status, end_ns = int(parts[3]), int(parts[4]), int(parts[5])
        usage = Usage(float(parts[6]), float(parts[7]), int(parts[8]))
    except ValueError:
        return None
    if attempt < 1 or not 0 <= status < 1 << 16 or end_ns <= 0:
        return None
    return Ended(parts[2], attempt, "" if parts[1] == "-" else parts[1], status, end_ns, usage)


def read(store_path: str, task: str, attempt: int) -> Ended | None:
    """The end the waiter of this attempt wrote, if there is a whole, matching one."""
    entry = name(task, attempt)
    dfd = open_dir(store_path, create=False) if entry else None
    if entry is None or dfd is None:
        return None
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK,
                     dir_fd=dfd)
    except OSError:
        return None
    finally:
        os.close(dfd)
    try:
        data = os.read(fd, MAX_SIZE + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    found = parse(data)
    if found is None or found.task != task or found.attempt != attempt:
        return None
    return found


def event_of(found: Ended, who: dict[str, Any]) -> ev.Event:
    """The `exited`/`killed` event the waiter would have recorded itself."""
    event = end_event(found.task, found.status, found.usage, end_ns=found.end_ns, who=who)
    if found.attempt > 1:
        event = event._replace(data={**event.data, "attempt": found.attempt})
    return event


def present(store_path: str, task: str, attempt: int) -> bool:
    entry = name(task, attempt)
    dfd = open_dir(store_path, create=False) if entry else None
    if entry is None or dfd is None:
        return False
    try:
        os.stat(entry, dir_fd=dfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False
    finally:
        os.close(dfd)


def fold(store: Store, tasks: Sequence[Task], via: str) -> dict[str, ev.Event]:
    """Record, in one transaction, the ends found in the files of these tasks' current
    attempts; the events recorded by task id. Files of ends now recorded are deleted."""
    found = {t.id: f for t in tasks
             if (f := read(store.path, t.id, t.attempt)) is not None}
    store_id = store.store_id
    who = actor(via)
    events = {tid: event_of(f, who) for tid, f in found.items()
              if not f.store_id or f.store_id == store_id}
    done: list[ev.Event] = []
    if events:
        def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
            out = []
            for tid, event in events.items():
                now = task_from_rows(views["tasks"], tid)
                if now is not None and now.running and now.attempt == found[tid].attempt:
                    out.append(event)
            return out

        done = store.transact(decide)
    for tid, f in found.items():  # recorded now, or earlier by someone else: no longer needed
        forget(store.path, tid, f.attempt)
    return {e.task: e for e in done}


def mark(store_path: str, tasks: Sequence[Task]) -> None:
    """Tell these attempts' waiters that a stopper will record their ends (before it signals
    them): they write their end file and leave the rest to the stopper."""
    dfd = open_dir(store_path, create=True)
    if dfd is None:
        return  # the waiters record their ends themselves, as before
    try:
        for task in tasks:
            entry = name(task.id, task.attempt)
            if entry is None:
                continue
            try:
                os.close(os.open(entry + STOP, os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                 os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dfd))
            except FileExistsError:
                continue  # another stopper marked it: it folds, or this one does
            except OSError:
                continue  # no marker: that waiter records its end itself, as before
    finally:
        os.close(dfd)


def forget(store_path: str, task: str, attempt: int) -> None:
    discard(store_path, task, attempt)


def await_ends(store_path: str, tasks: Sequence[Task], timeout: float) -> bool:
    """Until every task's waiter has written its end file or exited (then it recorded the end
    itself, or reconciliation will), or `timeout` (then False). A file appears microseconds
    after its task is reaped, so this is a short poll, not a wait for 100 store imports."""
    import time

    from ghost.process import identity

    pending = list(tasks)
    deadline = time.monotonic() + timeout
    pause = 0.001
    while pending:
        pending = [t for t in pending if not present(store_path, t.id, t.attempt)
                   and identity.is_alive(t.monitor_pid, t.monitor_start_ticks)]
        if not pending:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(0.02, pause * 2)
    return True
