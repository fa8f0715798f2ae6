"""What the hubs follow, built on the actions: the event feed and a task's output.

Events are handed out as the records `ghost events` writes (ghost.state.records), one JSON line
each with its seq; output as (start offset, bytes). The bytes already in a log are read through
ghost.state.logindex, so offsets stay valid across the rotations of --log-max.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from ghost.web.hub import Hub, Hubs

MAX_READ = 1 << 20  # bytes one output request returns at most
CHUNK = 1 << 16


def last_seq() -> int:
    from ghost.actions import audit

    return audit.feed(0).last


def event_lines(after: int, until: int | None = None, follow: bool = False,
                stop: Callable[[], bool] | None = None) -> Iterator[list[tuple[int, str]]]:
    """Batches of (seq, export record as one JSON line) after `after` (up to `until`)."""
    from ghost.actions import audit
    from ghost.state import records

    found = audit.feed(after, follow, stop)
    for batch in found.batches:
        items = list(batch)
        done = until is not None and bool(items) and items[-1].seq >= until
        if until is not None:
            items = [item for item in items if item.seq <= until]
        if items:
            lines = records.jsonl(items, found.store_id).decode().splitlines()
            yield [(item.seq, line) for item, line in zip(items, lines, strict=True)]
        if done:
            return


def _follow_events(position: int, stop: Callable[[], bool]) -> Iterator[tuple[str, Any, int]]:
    for batch in event_lines(position, follow=True, stop=stop):
        yield "events", batch, batch[-1][0]


def event_hub(hubs: Hubs, loop: asyncio.AbstractEventLoop) -> Hub:
    return hubs.get("events", lambda idle: Hub(loop, "events", _follow_events, last_seq, idle))


def _pieces(task_id: str) -> Any:
    """The task's log as pieces (one, or its rotated pieces with --log-max): offsets here are
    logical, counted over all the output the task ever wrote (ghost.state.logindex)."""
    from ghost.state import logindex
    from ghost.state.logs import task_log

    return logindex.open_pieces(task_log(task_id))


def read_range(task_id: str, offset: int, limit: int) -> tuple[bytes, int, int]:
    """Up to `limit` bytes of the task's output from logical `offset` (or from the oldest byte
    still kept, if rotation dropped the ones before it): (bytes, where they start, the end)."""
    from ghost.state import logindex

    pieces = _pieces(task_id)
    try:
        size = logindex.end(pieces)
        start = max(offset, pieces[0].start)
        if start >= size:
            return b"", start, size
        data = b"".join(logindex.read_range(pieces, start, min(size, start + limit)))
        return data, start, size
    finally:
        logindex.close(pieces)


def _ends(task_id: str) -> tuple[int, int]:
    """(logical end of the output, size of the current log file)."""
    from ghost.state import logindex

    pieces = _pieces(task_id)
    try:
        return logindex.end(pieces), pieces[-1].size()
    finally:
        logindex.close(pieces)


class _OutputFollower:
    """What an output hub runs: follow_output from the end of the current log file, counting
    logical offsets (a rotation continues in the new file; every byte comes once, in order)."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.file_start = 0

    def start(self) -> int:
        logical, self.file_start = _ends(self.task_id)
        return logical

    def items(self, position: int, stop: Callable[[], bool]) -> Iterator[tuple[str, Any, int]]:
        from ghost.actions.follow import Output, follow_output

        for item in follow_output([self.task_id], lines=False, stop=stop,
                                  start=self.file_start):
            if isinstance(item, Output):
                yield "output", (position, item.data), position + len(item.data)
                position += len(item.data)
            else:
                yield "ended", item.task, position
                return


def output_hub(hubs: Hubs, loop: asyncio.AbstractEventLoop, task_id: str) -> Hub:
    def make(idle: Callable[[Hub], None]) -> Hub:
        follower = _OutputFollower(task_id)
        return Hub(loop, f"output {task_id[:8]}", follower.items, follower.start, idle)

    return hubs.get(f"output:{task_id}", make)


def utf8_cut(data: bytes) -> int:
    """How many leading bytes of `data` end on a character boundary: an incomplete UTF-8
    sequence at the end is held back until its remaining bytes arrive."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # a lead byte (or ASCII): is its sequence complete?
            need = 1 if byte < 0x80 else 2 if byte >> 5 == 6 else 3 if byte >> 4 == 14 \
                else 4 if byte >> 3 == 30 else 1
            return len(data) if back >= need else len(data) - back
    return len(data)
