"""An attempt's end, kept by its waiter in a file before it is recorded (issue 15).

The waiter imports nothing but `os` and `sys` while its task runs; recording the end in the
event log first costs it the store's modules (tens of ms, 100 waiters at once: seconds). So
the moment it has reaped its task it writes the exact end (wait status, rusage, time) with
os-only calls to `<data dir>/ends/<task>.<attempt>` (0600, in a 0700 directory, written under
a temporary name and renamed, never through a symlink). Then:

- when a `stop` marked the attempt (`<task>.<attempt>.stop`, created before its signal), the
  stopper folds every end file it waits for into the log in ONE transaction
  (ghost.process.endfold) and deletes the files; the waiter sees its file gone and exits
  without ever importing the store. If the stopper dies instead, the waiter records the end
  itself after `HANDOFF_WAIT`.
- otherwise the waiter records the end itself (ghost.process.record) and deletes the file.

Either way the end is appended only while that attempt is recorded as running, decided inside
the write transaction, so it is recorded exactly once. A waiter killed after writing the file
leaves it behind: the reader that reconciles the task (its monitor is dead) records that end
instead of `lost`.

This module is imported by the lean waiter: `os` and `time` (built in) only.
"""

from __future__ import annotations

import os
import time

ENDS = "ends"
STOP = ".stop"
MAGIC = "ghost-end-1"
HANDOFF_WAIT = 3.0  # how long a marked waiter leaves its end to the stopper
SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def ends_dir(store: str) -> str:
    return os.path.join(os.path.dirname(store), ENDS)


def name(task: str, attempt: int) -> str | None:
    """The file name of this attempt's end; None for an id that is no safe file name."""
    if not task or len(task) > 200 or not SAFE.issuperset(task) or task[0] == ".":
        return None
    return f"{task}.{int(attempt)}"


def open_dir(store: str, create: bool) -> int | None:
    """An fd on the ends directory, if it is ours and private (never through a symlink)."""
    path = ends_dir(store)
    if create:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError:
            return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    st = os.fstat(fd)
    if st.st_uid != os.geteuid() or st.st_mode & 0o077:
        os.close(fd)
        return None
    return fd


def encode(store_id: str, task: str, attempt: int, status: int, end_ns: int,
           rusage: object) -> bytes:
    utime = float(getattr(rusage, "ru_utime", 0.0))
    stime = float(getattr(rusage, "ru_stime", 0.0))
    maxrss = int(getattr(rusage, "ru_maxrss", 0))
    return (f"{MAGIC} {store_id or '-'} {task} {int(attempt)} {int(status)} {int(end_ns)} "
            f"{utime!r} {stime!r} {maxrss}\n").encode()


def write(spec: dict[str, object], status: int, rusage: object, end_ns: int) -> bool:
    """Keep this attempt's end in its file; False when it could not be written (the waiter
    then simply records the end the slow way)."""
    task, attempt = str(spec["task"]), int(str(spec.get("attempt", 1)))
    final = name(task, attempt)
    dfd = open_dir(str(spec["store"]), create=True) if final else None
    if final is None or dfd is None:
        return False
    data = encode(str(spec.get("store_id") or ""), task, attempt, status, end_ns, rusage)
    tmp = f".{final}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=dfd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, final, src_dir_fd=dfd, dst_dir_fd=dfd)  # readers see all or nothing
        return True
    except OSError:
        _unlink(dfd, tmp)
        return False
    finally:
        os.close(dfd)


def _exists(dfd: int, entry: str) -> bool:
    try:
        os.stat(entry, dir_fd=dfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _unlink(dfd: int, entry: str) -> None:
    try:
        os.unlink(entry, dir_fd=dfd)
    except FileNotFoundError:
        pass


def handed_off(spec: dict[str, object]) -> bool:
    """True once a stopper recorded this attempt's end from its file (the file is gone); False
    when the attempt is not marked by a stop, or the stopper did not fold it in time."""
    final = name(str(spec["task"]), int(str(spec.get("attempt", 1))))
    dfd = open_dir(str(spec["store"]), create=False) if final else None
    if final is None or dfd is None:
        return False
    try:
        if not _exists(dfd, final + STOP):
            return False
        deadline = time.monotonic() + HANDOFF_WAIT
        pause = 0.002
        while _exists(dfd, final):
            if time.monotonic() >= deadline:
                return False
            time.sleep(pause)
            pause = min(0.05, pause * 2)
        return True
    finally:
        os.close(dfd)


def discard(store: str, task: str, attempt: int) -> None:
    """Delete this attempt's end file and stop marker (once its end is recorded)."""
    final = name(task, attempt)
    dfd = open_dir(store, create=False) if final else None
    if final is None or dfd is None:
        return
    try:
        _unlink(dfd, final)
        _unlink(dfd, final + STOP)
    finally:
        os.close(dfd)


def discard_tasks(store: str, tasks: set[str]) -> None:
    """Delete every end file and stop marker left for `tasks` (their cleanup: a waiter killed
    between its end being recorded and `discard` leaves them behind). One pass over the
    directory, however many tasks."""
    dfd = open_dir(store, create=False) if tasks else None
    if dfd is None:
        return
    try:
        for entry in os.listdir(dfd):
            task, _, attempt = entry.removesuffix(STOP).rpartition(".")
            if task in tasks and attempt.isdigit():
                _unlink(dfd, entry)
    finally:
        os.close(dfd)
