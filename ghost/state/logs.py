"""Reading a task's output file: all of it or its last lines, as raw bytes, in bounded memory."""

from __future__ import annotations

import errno
import os
import re
import stat
from collections.abc import Iterator

from ghost import datadir
from ghost.errors import GhostError
from ghost.text import printable

CHUNK = 1 << 16
_TASK_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")  # what may become a file name in logs/


def task_log(task_id: str, base: str | None = None) -> str:
    """Where task `task_id`'s output is: `logs/<id>.log` in the data dir as it is now.

    The path stored at spawn time is not trusted: after the data dir was moved it names
    whatever now sits at the old place. A stored id that is not a task id (damage) cannot be
    made into a path that leaves the logs directory."""
    if not _TASK_ID.fullmatch(task_id):
        raise GhostError(f"task id {printable(task_id)!r} is not a valid task id (damaged "
                         "store? run `ghost doctor`)")
    return datadir.log_path(task_id, base)


def log_problem(path: str, st: os.stat_result) -> str | None:
    """Why the file with this (l)stat cannot be a task log, or None when it can: a regular
    file owned by us. Also for `ghost doctor`: call `check_log(path)`."""
    if stat.S_ISLNK(st.st_mode):
        return "is a symlink; refusing to follow it"
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        return f"is {kind}, not a regular file; refusing to read it"
    if st.st_uid != os.geteuid():
        return f"is owned by uid {st.st_uid}, not by you (uid {os.geteuid()}); refusing to read it"
    return None


def check_log(path: str) -> str | None:
    """For `ghost doctor`: what is wrong with the log at `path` (never blocks, follows no
    link), or None when it is a regular file of ours or does not exist."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot be checked: {exc.strerror}"
    return log_problem(path, st)


def open_log(path: str) -> int:
    """Open a task log for reading: never follows a symlink planted in its place, never blocks
    on a FIFO (O_NONBLOCK), and refuses anything but a regular file owned by the user."""
    shown = printable(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GhostError(f"log file {shown} does not exist (was it deleted?)") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise GhostError(f"log file {shown} is a symlink; refusing to follow it") from None
        raise GhostError(f"cannot read log file {shown}: {exc.strerror}") from None
    try:
        problem = log_problem(path, os.fstat(fd))
    except OSError as exc:
        os.close(fd)
        raise GhostError(f"cannot read log file {shown}: {exc.strerror}") from None
    if problem:
        os.close(fd)
        raise GhostError(f"log file {shown} {problem}")
    return fd


def open_task_log(task_id: str) -> tuple[str, int]:
    """(path, fd) of a task's log in the current data dir (see `task_log`, `open_log`)."""
    path = task_log(task_id)
    return path, open_log(path)


def tail_offset(fd: int, lines: int) -> int:
    """Byte offset where the last `lines` lines start (a final line without newline counts)."""
    size = os.fstat(fd).st_size
    if lines <= 0:
        return size
    pos = size
    wanted = lines
    # A trailing newline ends the last line; it does not start another one.
    if size and os.pread(fd, 1, size - 1) == b"\n":
        wanted += 1
    while pos > 0:
        step = min(CHUNK, pos)
        pos -= step
        block = os.pread(fd, step, pos)
        idx = len(block)
        while True:
            idx = block.rfind(b"\n", 0, idx)
            if idx < 0:
                break
            wanted -= 1
            if wanted == 0:
                return pos + idx + 1
    return 0


def chunks(fd: int, offset: int) -> Iterator[bytes]:
    """The file's bytes from `offset` to its current end, in chunks."""
    while True:
        data = os.pread(fd, CHUNK, offset)
        if not data:
            return
        offset += len(data)
        yield data


def read(path: str, tail: int | None = None) -> Iterator[bytes]:
    return read_fd(open_log(path), tail)


def read_fd(fd: int, tail: int | None = None) -> Iterator[bytes]:
    """The bytes of an open log (all, or the last `tail` lines); closes `fd` when done."""
    try:
        start = 0 if tail is None else tail_offset(fd, tail)
        yield from chunks(fd, start)
    finally:
        os.close(fd)


def read_tail(fd: int, lines: int | None, max_bytes: int) -> tuple[int, int, bytes]:
    """(start, end, bytes) of the last `lines` lines, at most `max_bytes`, read in one pread.

    Unlike a plain tail, this never scans further back than `max_bytes`, so a multi-gigabyte
    log (or one long line) costs one bounded read. A start cut inside a UTF-8 character is
    moved to the next character.
    """
    end = os.fstat(fd).st_size
    start = max(0, end - max_bytes)
    data = os.pread(fd, end - start, start)
    end = start + len(data)
    if lines is not None:
        cut = _last_lines(data, lines)
        if cut is not None:
            start, data = start + cut, data[cut:]
    skip = 0
    while start > 0 and skip < min(3, len(data)) and 0x80 <= data[skip] < 0xC0:
        skip += 1
    return start + skip, end, data[skip:]


def _last_lines(data: bytes, lines: int) -> int | None:
    """Offset in `data` where its last `lines` lines start; None when it has fewer."""
    if lines == 0:
        return len(data)
    wanted = lines + (1 if data.endswith(b"\n") else 0)
    idx = len(data)
    while wanted:
        idx = data.rfind(b"\n", 0, idx)
        if idx < 0:
            return None
        wanted -= 1
    return idx + 1
