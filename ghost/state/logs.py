"""Reading a task's output file: all of it or its last lines, as raw bytes, in bounded memory."""

from __future__ import annotations

import os
from collections.abc import Iterator

from ghost.errors import GhostError

CHUNK = 1 << 16


def open_log(path: str) -> int:
    """Open a task log for reading; a symlink planted in its place is never followed."""
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise GhostError(f"log file {path} does not exist (was it deleted?)") from None
    except OSError as exc:
        raise GhostError(f"cannot read log file {path}: {exc.strerror}") from None


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
    fd = open_log(path)
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
