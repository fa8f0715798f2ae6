"""What the hubs follow, built on the actions: the event feed and a task's output.

Events are handed out as the records `ghost events` writes (ghost.state.records), one JSON line
each with its seq; output as (start offset, bytes). Reading the bytes already in a log is a
bounded pread of `logs/<id>.log`, the file every other surface reads.
"""

from __future__ import annotations

import asyncio
import os
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


def log_size(task_id: str) -> int:
    from ghost.state.logs import open_task_log

    _, fd = open_task_log(task_id)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def read_range(task_id: str, offset: int, limit: int) -> tuple[bytes, int]:
    """Up to `limit` bytes of the task's log from `offset`, and the log's size."""
    from ghost.state.logs import open_task_log

    _, fd = open_task_log(task_id)
    try:
        size = os.fstat(fd).st_size
        parts = []
        left = max(0, min(limit, size - offset))
        while left > 0:
            data = os.pread(fd, min(CHUNK, left), offset)
            if not data:
                break
            parts.append(data)
            offset += len(data)
            left -= len(data)
        return b"".join(parts), size
    finally:
        os.close(fd)


def _output_items(task_id: str) -> Callable[[int, Callable[[], bool]],
                                             Iterator[tuple[str, Any, int]]]:
    def items(position: int, stop: Callable[[], bool]) -> Iterator[tuple[str, Any, int]]:
        from ghost.actions.follow import Output, follow_output

        for item in follow_output([task_id], lines=False, stop=stop, start=position):
            if isinstance(item, Output):
                yield "output", (position, item.data), position + len(item.data)
                position += len(item.data)
            else:
                yield "ended", item.task, position
                return

    return items


def output_hub(hubs: Hubs, loop: asyncio.AbstractEventLoop, task_id: str) -> Hub:
    return hubs.get(f"output:{task_id}", lambda idle: Hub(
        loop, f"output {task_id[:8]}", _output_items(task_id), lambda: log_size(task_id), idle))


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
