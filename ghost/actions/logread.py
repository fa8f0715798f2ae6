"""`log --timestamps/--since/--until/--stream` (with or without -f): a task's output through its
chunk index (ghost.state.logindex). Never prints.

Only pumped tasks have an index (--pty, --stdin, --timestamps, --log-max); for the others these
flags are refused in one line.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ghost.actions.follow import Ended, Output, follow_output
from ghost.actions.query import status
from ghost.errors import USAGE, GhostError
from ghost.process.pump import index_path, piece_path
from ghost.state import logindex
from ghost.state.logs import open_log, task_log
from ghost.timeparse import parse_time
from projections.tasks import Task


@dataclass(frozen=True, slots=True)
class Options:
    timestamps: bool = False
    since: str | None = None
    until: str | None = None
    stream: str | None = None

    def filter(self) -> logindex.Filter:
        return logindex.Filter(parse_time(self.since) if self.since else None,
                               parse_time(self.until) if self.until else None,
                               logindex.STREAMS[self.stream] if self.stream else None)


def indexed_task(ident: str, options: Options) -> tuple[Task, str]:
    """The task and its log path, refused unless it has an index fit for `options`."""
    task = status(ident).task
    path = task_log(task.id)
    if not task.io.get("indexed") and not os.path.lexists(index_path(path)):
        raise GhostError(f"task {task.id} has no output index: --timestamps, --since, --until "
                         "and --stream need a task started with --timestamps, --pty, --stdin "
                         "or --log-max", USAGE)
    if options.stream and task.io.get("input") == "pty":
        raise GhostError(f"task {task.id} runs on a terminal: its stdout and stderr are one "
                         "stream (drop --stream)", USAGE)
    return task, path


def read(ident: str, tail: int | None, options: Options) -> tuple[Task, Iterator[bytes]]:
    """The task and its output as the options shape it (all of it, or the last `tail` lines)."""
    task, path = indexed_task(ident, options)
    keep = options.filter()
    pieces = logindex.open_pieces(path, indexed=True)

    def chunks() -> Iterator[bytes]:
        try:
            index = logindex.records(pieces)
            start = pieces[0].start
            if tail is not None and keep == logindex.Filter():
                start = logindex.tail_start(pieces, tail)
            data = logindex.filtered(pieces, index, keep, options.timestamps, start)
            yield from data if tail is None or keep == logindex.Filter() else _last(data, tail)
        finally:
            logindex.close(pieces)

    return task, chunks()


def _last(chunks: Iterator[bytes], lines: int) -> Iterator[bytes]:
    """The last `lines` lines of filtered output (kept in memory: filters come before -n)."""
    from collections import deque

    kept: deque[bytes] = deque(maxlen=lines + 1)
    partial = b""
    for chunk in chunks:
        parts = (partial + chunk).split(b"\n")
        partial = parts.pop()
        kept.extend(p + b"\n" for p in parts)
    if partial:
        kept.append(partial)
    out = list(kept)[-lines:] if lines else []
    yield b"".join(out)


class Cursor:
    """Where a follower is in one task's output, and the index records that cover it."""

    def __init__(self, path: str, options: Options) -> None:
        self.path = path
        self.idx_path = index_path(path)
        self.idx_fd = open_log(self.idx_path)
        self.idx_pos = 0
        self.records: list[logindex.Record] = []
        self.piece_start = 0
        self.file_pos = -1  # where the next chunk is expected in the current log file
        self.keep = options.filter()
        self.timestamps = options.timestamps
        self.stamper = logindex.Stamper()
        self._refresh()

    def _refresh(self) -> None:
        data = os.pread(self.idx_fd, 1 << 20, self.idx_pos)
        usable = len(data) - len(data) % logindex.RECORD
        self.idx_pos += usable
        for rec in logindex.parse(data[:usable]):
            if rec.stream == 0:
                self.piece_start = rec.offset
            else:
                self.records.append(rec)

    def _rotate(self) -> None:
        """The follower went on to the next log piece (the one right after its last, however
        far behind it is): that piece starts where the last ended. Its records may be in any
        index piece by now, so all of them are read again; the newest is followed from here."""
        self.piece_start += self.file_pos
        new = open_log(self.idx_path)
        os.close(self.idx_fd)
        self.idx_fd, self.idx_pos, self.records = new, 0, []
        older: list[logindex.Record] = []
        for n in range(logindex.MAX_PIECES - 1, 0, -1):
            path = piece_path(self.idx_path, n)
            if os.path.lexists(path):
                fd = open_log(path)
                try:
                    older += logindex.parse(logindex.read_all(fd))
                finally:
                    os.close(fd)
        start = self.piece_start
        self._refresh()  # its marker is the newest piece's start, maybe not ours: keep ours
        self.piece_start = start
        self.records = [r for r in older if r.stream != 0] + self.records
        self.records = [r for r in self.records if r.offset >= self.piece_start]

    def shape(self, data: bytes, offset: int) -> bytes:
        """`data` (read at `offset` in the current log file) as the options want it."""
        if offset == 0 and self.file_pos > 0:  # a rotation: the chunk is from the new file
            self._rotate()
        self.file_pos = offset + len(data)
        start = self.piece_start + offset
        stop = start + len(data)
        if not self.records or self.records[-1].offset < stop:
            self._refresh()
        out = []
        for i, rec in enumerate(self.records):
            end = self.records[i + 1].offset if i + 1 < len(self.records) else stop
            lo, hi = max(start, rec.offset), min(stop, end)
            if lo < hi and self.keep.keeps(rec):
                piece = data[lo - start:hi - start]
                out.append(self.stamper(piece, rec.time_ns) if self.timestamps else piece)
        # Records wholly before this chunk are done with (keep the one that covers `stop`).
        while len(self.records) > 1 and self.records[1].offset <= stop:
            self.records.pop(0)
        return b"".join(out)

    def close(self) -> None:
        os.close(self.idx_fd)


def follow(idents: Sequence[str], tail: int | None,
           options: Options) -> Iterator[Output | Ended]:
    """`log -f` with the options: the shaped output of each task as it is written."""
    cursors = {}
    try:
        for ident in idents:
            task, path = indexed_task(ident, options)
            cursors[task.id] = Cursor(path, options)
        for item in follow_output(idents, tail, lines=False):
            if isinstance(item, Output):
                data = cursors[item.task_id].shape(item.data, item.offset)
                if data:
                    yield Output(item.task_id, data, item.offset)
            else:
                yield item
    finally:
        for cursor in cursors.values():
            cursor.close()

