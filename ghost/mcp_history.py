"""Event records for the `ghost_history` MCP tool, read straight from the event log.

One task's events come through the per-task index; the whole log is read backwards from its
end in chunks, so the most recent `limit` events cost a few short reads however long the log.
Records have the shape of `ghost events` lines: seq, time, time_ns, type, task, v and the
event's own fields, never an `env` mapping (only env_keys); undecodable entries appear as
{"seq", "type": "corrupt", "reason"} so a reader sees no gap.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from events.store import Store
from events.types import Corrupt, Event
from ghost.errors import TaskNotFound
from ghost.render import rfc3339
from ghost.state import open_store, store_errors
from ghost.tasks import resolve
from ghost.timeparse import parse_time

CHUNK = 2000


def history(ident: str | None, since: str | None, limit: int) -> tuple[list[dict[str, Any]],
                                                                        bool]:
    """The last `limit` events (of one task, or all) at or after `since`; and whether older
    matching events were left out."""
    since_ns = parse_time(since) if since else None
    store = open_store(write=False)
    if store is None:
        if ident is not None:
            raise TaskNotFound(ident)
        return [], False
    with store_errors():
        if ident is not None:
            chosen = _keep(store.task_events(resolve(store, ident)), since_ns)
        else:
            chosen = _recent(store, since_ns, limit)
    return [record(e) for e in chosen[-limit:]], len(chosen) > limit


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


def record(event: Event | Corrupt) -> dict[str, Any]:
    if isinstance(event, Corrupt):
        return {"seq": event.seq, "type": "corrupt", "reason": event.reason}
    out: dict[str, Any] = {"seq": event.seq, "time": rfc3339(event.time_ns),
                           "time_ns": event.time_ns, "type": event.type, "task": event.task,
                           "v": event.v}
    for key, value in event.data.items():
        if key != "env" and key not in out:  # env values may hold secrets: never exported
            out[key] = _jsonable(value)
    if not event.known:
        out["known"] = False
    return out


def _jsonable(value: Any) -> Any:
    """msgpack can hold bytes and non-string keys (a newer ghost's event); JSON cannot."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
