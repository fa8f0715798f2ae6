"""Event records for the `ghost_history` MCP tool, in the shape of `ghost events` lines.

One task's events come from ghost.audit.history (the per-task index; cleaned tasks and failed
starts included). For all tasks the log is read backwards from its end in chunks, so the most
recent `limit` events cost a few short reads however long the log is (audit.history would scan
it all). Records are ghost.export.record's: seq, time, time_ns, type, task, v, store and the
event's own fields, never an `env` mapping; undecodable entries appear as
{"seq", "type": "corrupt", "reason"} so a reader sees no gap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from events.store import Store
from events.types import Corrupt, Event
from ghost import audit, export
from ghost.state import open_store, store_errors
from ghost.timeparse import parse_time

CHUNK = 2000


def history(ident: str | None, since: str | None, limit: int) -> tuple[list[dict[str, Any]],
                                                                        bool]:
    """The last `limit` events (of one task, or all) at or after `since`; and whether older
    matching events were left out."""
    if ident is not None:
        found = audit.history(ident, since)
        chosen = [entry.item for entry in found.entries]
        store_id = found.store_id
    else:
        store = open_store(write=False)
        if store is None:
            return [], False
        with store_errors():
            chosen = _recent(store, parse_time(since) if since else None, limit)
            store_id = store.store_id
    return ([_jsonable(export.record(e, store_id)) for e in chosen[-limit:]],
            len(chosen) > limit)


def _keep(events: Iterable[Event | Corrupt], since_ns: int | None) -> list[Event | Corrupt]:
    if since_ns is None:
        return list(events)
    return [e for e in events if isinstance(e, Corrupt) or e.time_ns >= since_ns]


def _recent(store: Store, since_ns: int | None, limit: int) -> list[Event | Corrupt]:
    """Read backwards until `limit`+1 events match, or a whole chunk is older than `since`
    (wall-clock times are data and may step back a little, never by a whole chunk)."""
    picked: list[Event | Corrupt] = []
    hi = store.last_seq()
    while hi > 0 and len(picked) <= limit:
        lo = max(0, hi - CHUNK)
        fresh = _keep(store.read(lo, hi - lo), since_ns)
        picked[:0] = fresh
        if since_ns is not None and not fresh:
            break
        hi = lo
    return picked


def _jsonable(value: Any) -> Any:
    """msgpack can hold bytes and non-string keys (a newer ghost's event); JSON cannot. Same
    conversions as `ghost events`: bytes as base64 text, anything else unknown as its repr."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return repr(value)
