"""Reading a pumped task's log: its rotated pieces as one stream, and the chunk index beside it
(stream tags and times) for `log --timestamps/--since/--until/--stream`.

The pump (ghost.process.pump) writes `<id>.log` and `<id>.idx`; at --log-max both rotate to
`.1`, `.2`, ... Offsets here are *logical*: counted over the task's whole output, so they stay
valid across a rotation. Every index piece starts with a marker record giving the logical
offset where its log piece starts; each further record says "from this offset on, bytes came
from this stream at this time" and is written before those bytes are.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ghost.errors import GhostError
from ghost.process.pump import STREAM_NAMES, TAG_SHIFT, index_path, piece_path
from ghost.state.logs import open_log

RECORD = 16
MS = 1_000_000
CHUNK = 1 << 16
OFFSET_MASK = (1 << TAG_SHIFT) - 1
STREAMS = {name: tag for tag, name in STREAM_NAMES.items()}
MAX_PIECES = 1000  # --log-keep is bounded well below this; stop a scan of a damaged dir


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    time_ns: int
    stream: int  # 0: start of a piece (offset is where it starts)


@dataclass(slots=True)
class Piece:
    fd: int
    start: int  # logical offset of its first byte
    idx_fd: int = -1

    def size(self) -> int:
        return os.fstat(self.fd).st_size


def parse(data: bytes) -> list[Record]:
    out = []
    for pos in range(0, len(data) - len(data) % RECORD, RECORD):
        word = int.from_bytes(data[pos:pos + 8], "little")
        out.append(Record(word & OFFSET_MASK, int.from_bytes(data[pos + 8:pos + 16], "little"),
                          word >> TAG_SHIFT))
    return out


def read_all(fd: int, offset: int = 0) -> bytes:
    parts = []
    while data := os.pread(fd, 1 << 20, offset):
        parts.append(data)
        offset += len(data)
    return b"".join(parts)


def has_index(log_path: str) -> bool:
    return os.path.lexists(index_path(log_path))


def _open_idx(path: str) -> int:
    try:
        return open_log(path)
    except GhostError:
        return -1


def open_pieces(log_path: str, indexed: bool | None = None) -> list[Piece]:
    """The log's pieces, oldest first, opened (a rotation while reading moves names, not open
    files). The first piece is opened from the current name, older ones after it; a rotation
    in between shows as a gap in the chain of starts, and the opening is tried again."""
    if indexed is None:
        indexed = has_index(log_path)
    for _ in range(5):
        pieces = _try_open(log_path, indexed)
        if pieces is not None:
            return pieces
    raise GhostError(f"log {log_path} kept rotating while being read; try again")


def _try_open(log_path: str, indexed: bool) -> list[Piece] | None:
    current = Piece(open_log(log_path), 0)
    if not indexed:
        return [current]
    pieces = [current]
    try:
        current.idx_fd = _open_idx(index_path(log_path))
        current.start = _marker(current)
        for n in range(1, MAX_PIECES):
            path = piece_path(log_path, n)
            if not os.path.lexists(path):
                break
            older = Piece(open_log(path), 0, _open_idx(piece_path(index_path(log_path), n)))
            pieces.insert(0, older)
            older.start = _marker(older)
            if older.start + older.size() != pieces[1].start:
                close(pieces)
                return None
    except BaseException:
        close(pieces)
        raise
    return pieces


def _marker(piece: Piece) -> int:
    if piece.idx_fd < 0:
        return 0
    head = parse(os.pread(piece.idx_fd, RECORD, 0))
    return head[0].offset if head and head[0].stream == 0 else 0


def other_pieces(log_path: str) -> list[str]:
    """The files beside a task's log that ghost made for it: its index and rotated pieces."""
    found = []
    for base in (log_path, index_path(log_path)):
        for n in range(0, MAX_PIECES):
            path = piece_path(base, n)
            if os.path.lexists(path):
                if path != log_path:
                    found.append(path)
            elif n > 0:
                break
    return found


def next_piece(log_path: str, fd: int) -> int | None:
    """For a reader at the end of the piece open at `fd`: the next piece, opened, once the log
    rotated (None while `fd` is still the current piece, or while a rotation is under way).

    A reader that lagged behind several rotations goes to the piece right after its own (now
    `<id>.log.K`), not to the newest: nothing is skipped that is still on disk."""
    mine = os.fstat(fd)
    for _ in range(5):  # names move under us during a rotation: look again until stable
        k = _piece_number(log_path, mine)
        if k in (None, 0):
            return None if k == 0 else _oldest(log_path)
        path = piece_path(log_path, k - 1)
        try:
            new = open_log(path)
        except GhostError:
            continue
        if _piece_number(log_path, mine) == k:
            return new
        os.close(new)
    return None


def _piece_number(log_path: str, st: os.stat_result) -> int | None:
    """Which piece (0 = the current log) the file with stat `st` is now; None if gone."""
    for n in range(MAX_PIECES):
        try:
            now = os.stat(piece_path(log_path, n), follow_symlinks=False)
        except FileNotFoundError:
            if n > 0:
                return None
            continue  # the current name is missing only inside a rotation
        if (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
            return n
    return None


def _oldest(log_path: str) -> int | None:
    """The reader's piece was deleted (beyond --log-keep): go on with the oldest left."""
    for n in range(MAX_PIECES - 1, -1, -1):
        path = piece_path(log_path, n)
        if os.path.lexists(path):
            try:
                return open_log(path)
            except GhostError:
                return None
    return None


def close(pieces: Iterable[Piece]) -> None:
    for piece in pieces:
        os.close(piece.fd)
        if piece.idx_fd >= 0:
            os.close(piece.idx_fd)


def end(pieces: list[Piece]) -> int:
    return pieces[-1].start + pieces[-1].size()


def read_range(pieces: list[Piece], start: int, stop: int | None = None) -> Iterator[bytes]:
    """The bytes from logical offset `start` to `stop` (default: the current end), in chunks."""
    for piece in pieces:
        pos = max(start, piece.start) - piece.start
        while True:
            want = CHUNK if stop is None else min(CHUNK, stop - piece.start - pos)
            if want <= 0:
                return
            data = os.pread(piece.fd, want, pos)
            if not data:
                break
            pos += len(data)
            yield data


def tail_start(pieces: list[Piece], lines: int) -> int:
    """Logical offset where the last `lines` lines start, over all pieces."""
    last = end(pieces)
    first = pieces[0].start
    if lines <= 0:
        return last
    wanted = lines
    if last > first and _pread(pieces, 1, last - 1) == b"\n":
        wanted += 1
    pos = last
    while pos > first:
        step = min(CHUNK, pos - first)
        pos -= step
        block = _pread(pieces, step, pos)
        idx = len(block)
        while (idx := block.rfind(b"\n", 0, idx)) >= 0:
            wanted -= 1
            if wanted == 0:
                return pos + idx + 1
    return first


def _pread(pieces: list[Piece], size: int, pos: int) -> bytes:
    return b"".join(read_range(pieces, pos, pos + size))


def read(log_path: str, tail: int | None = None) -> Iterator[bytes]:
    """All of a (maybe rotated) log, or its last `tail` lines; pieces are closed when done."""
    return read_opened(open_pieces(log_path), tail)


def read_opened(pieces: list[Piece], tail: int | None = None) -> Iterator[bytes]:
    """`read` of pieces already opened (a refusal comes before any output); closes them."""
    try:
        start = pieces[0].start if tail is None else tail_start(pieces, tail)
        yield from read_range(pieces, start)
    finally:
        close(pieces)


# -- the index -----------------------------------------------------------------------------

def records(pieces: list[Piece]) -> list[Record]:
    """Every data record of every piece, in order (markers left out)."""
    out: list[Record] = []
    for piece in pieces:
        if piece.idx_fd >= 0:
            out.extend(r for r in parse(read_all(piece.idx_fd)) if r.stream != 0)
    return out


@dataclass(frozen=True, slots=True)
class Filter:
    since_ns: int | None = None
    until_ns: int | None = None
    stream: int | None = None

    def keeps(self, record: Record) -> bool:
        # Compared in whole milliseconds, as --timestamps shows them: `--since T --until T`
        # with T copied from a line keeps that line.
        # The bounds are rounded: a time parsed from text may be a hair below its millisecond.
        ms = record.time_ns // MS
        return ((self.stream is None or record.stream == self.stream)
                and (self.since_ns is None or ms >= round(self.since_ns / MS))
                and (self.until_ns is None or ms <= round(self.until_ns / MS)))


def segments(pieces: list[Piece], index: list[Record], start: int,
             stop: int | None = None) -> Iterator[tuple[bytes, Record]]:
    """(bytes, the record they fall under) from `start` to `stop` (default: the end)."""
    for i, rec in enumerate(index):
        seg_end = index[i + 1].offset if i + 1 < len(index) else stop
        if seg_end is not None and seg_end <= start:
            continue
        if stop is not None and rec.offset >= stop:
            return
        seg_start = max(start, rec.offset)
        upto = seg_end if stop is None or seg_end is None else min(seg_end, stop)
        for data in read_range(pieces, seg_start, upto):
            yield data, rec


def stamp(ns: int) -> bytes:
    """RFC 3339 with milliseconds, in local time with its offset."""
    seconds, rest = divmod(ns, 1_000_000_000)
    tm = time.localtime(seconds)
    off = tm.tm_gmtoff or 0
    sign = "+" if off >= 0 else "-"
    off = abs(off)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
    return f"{text}.{rest // 1_000_000:03d}{sign}{off // 3600:02d}:{off % 3600 // 60:02d} ".encode()


class Stamper:
    """Puts the time of its first byte before every line (state kept across chunks)."""

    def __init__(self) -> None:
        self.at_line_start = True

    def __call__(self, data: bytes, time_ns: int) -> bytes:
        if not data:
            return data
        prefix = stamp(time_ns)
        body = data.replace(b"\n", b"\n" + prefix)
        if data.endswith(b"\n"):
            body = body[:-len(prefix)]
        if self.at_line_start:
            body = prefix + body
        self.at_line_start = data.endswith(b"\n")
        return body


def filtered(pieces: list[Piece], index: list[Record], keep: Filter, timestamps: bool,
             start: int, stamper: Stamper | None = None,
             stop: int | None = None) -> Iterator[bytes]:
    """The bytes the filter keeps from `start` on, with line times when `timestamps`."""
    stamper = stamper or Stamper()
    for data, rec in segments(pieces, index, start, stop):
        if keep.keeps(rec):
            yield stamper(data, rec.time_ns) if timestamps else data
