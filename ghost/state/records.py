"""Export records: events as the JSON Lines and msgpack records documented in docs/events.md.

Every record is seq, time (RFC 3339 UTC), time_ns, type, task, v and store, then the event's
own fields, minus secret values. `jsonl` is the hot path of `ghost events` (issue 5 asks for
200k events/s on 2 cores), so it is written for speed: each event is decoded and encoded in
turn while it is still in the CPU cache, the fixed head is formatted directly, and the fields
go through orjson (≈ 0.2 µs where the stdlib encoder takes ≈ 3 µs). Whatever orjson will not
encode the way the stdlib does (strings holding undecodable bytes, integers past 64 bits) takes
the stdlib path, one event at a time, with the same result.
"""

from __future__ import annotations

import base64
import gc
import json
import time
from collections.abc import Iterable
from typing import Any

from events import codec
from events.types import Corrupt, Event

# Names every export record sets itself; an event field with one of these names (none has one
# today) is moved under "fields" instead of overwriting it.
RESERVED = frozenset({"seq", "time", "time_ns", "type", "task", "v", "store", "fields"})
SECRET_FIELDS = frozenset({"env"})  # values never leave the store, whatever event holds them
_SET_BY_EXPORT = SECRET_FIELDS | RESERVED
_SECONDS = tuple(f"{n:02d}" for n in range(60))
_SLICEABLE_NS = 10**9  # from here on str(time_ns) has at least ten digits: see _jsonl


def public_fields(data: Any) -> dict[str, Any]:
    """An event's fields as exported: secrets dropped, reserved names moved under "fields"."""
    if SECRET_FIELDS.isdisjoint(data) and RESERVED.isdisjoint(data):
        plain_fields: dict[str, Any] = data
        return plain_fields
    kept = {k: v for k, v in data.items() if k not in SECRET_FIELDS and k not in RESERVED}
    moved = {k: v for k, v in data.items() if k in RESERVED and k not in SECRET_FIELDS}
    if moved:
        kept["fields"] = moved
    return kept


def rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def record(item: Event | Corrupt, store_id: str) -> dict[str, Any]:
    """The export record of one log entry."""
    if isinstance(item, Corrupt):
        return {"seq": item.seq, "type": "corrupt", "reason": item.reason, "store": store_id}
    head = {"seq": item.seq, "time": rfc3339(item.time_ns), "time_ns": item.time_ns,
            "type": item.type, "task": item.task, "v": item.v, "store": store_id}
    head.update(public_fields(item.data))
    return head


def plain(value: Any) -> Any:
    """JSON for the msgpack values JSON lacks (ghost never writes them; a newer ghost might)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return repr(value)


def utf8(text: str) -> bytes:
    """Valid UTF-8 always: bytes that were not UTF-8 (kept in the log as surrogate escapes,
    e.g. a non-UTF-8 argv) come out as U+FFFD, as everywhere else in ghost's output."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        from ghost.text import printable

        return printable(text).encode()


# -- the stdlib encoder: the reference, and the path for what orjson refuses -------------------

_quote = json.encoder.encode_basestring
# One C encoder made once and reused: json.dumps builds a new one on every call, which cost
# about as much as the encoding itself.
_c_make = getattr(json.encoder, "c_make_encoder", None)
if _c_make is not None:
    _chunks = _c_make(None, plain, _quote, None, ":", ",", False, False, True)

    def stdlib_line(value: Any) -> str:
        return "".join(_chunks(value, 0))
else:  # an interpreter without the C accelerator
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"),
                                check_circular=False, default=plain)

    def stdlib_line(value: Any) -> str:
        return _encoder.encode(value)


def stdlib_record_line(item: Event | Corrupt, store_id: str) -> bytes:
    return utf8(stdlib_line(record(item, store_id))) + b"\n"


def jsonl_stdlib(items: Iterable[Event | Corrupt], store_id: str) -> bytes:
    """JSON Lines through the standard library only: the reference `jsonl` must agree with."""
    return b"".join(stdlib_record_line(item, store_id) for item in items)


# -- the fast path ----------------------------------------------------------------------------

def jsonl(items: Iterable[Event | Corrupt], store_id: str) -> bytes:
    """JSON Lines for a batch (one record per line, each ending in a newline)."""
    import orjson  # only `ghost events` and `history --json` pay for it

    # Decoding and encoding make many small objects that are never cyclic: pausing the cyclic
    # GC for the batch saves ~5% (as in Store.read).
    paused = gc.isenabled()
    gc.disable()
    try:
        return _jsonl(items, store_id, orjson)
    finally:
        if paused:
            gc.enable()


def _jsonl(items: Iterable[Event | Corrupt], store_id: str, orjson: Any) -> bytes:
    dumps, options, refused = orjson.dumps, orjson.OPT_NON_STR_KEYS, orjson.JSONEncodeError
    store_tail = f',"store":{_quote(store_id)}'
    out: list[bytes] = []
    add = out.append
    minute_at, minute_text = -1, ""  # events come in bursts: format each minute once
    gmtime, strftime = time.gmtime, time.strftime
    for item in items:
        if item.__class__ is not Event or item.time_ns < _SLICEABLE_NS:
            add(stdlib_record_line(item, store_id))
            continue
        event_type, task, data, ns, version, seq, _ = item
        second = ns // 1_000_000_000
        minute = second // 60
        if minute != minute_at:
            minute_at = minute
            minute_text = strftime("%Y-%m-%dT%H:%M:", gmtime(second))
        digits = str(ns)  # its last nine are the nanoseconds, so no divmod or format spec
        try:
            head = (f'{{"seq":{seq},"time":"{minute_text}{_SECONDS[second - minute * 60]}.'
                    f'{digits[-9:-3]}Z","time_ns":{digits},"type":{_quote(event_type)},'
                    f'"task":{_quote(task)},"v":{version}{store_tail}').encode()
            # orjson's own result is not kept: holding thousands of them (a 1 KiB buffer
            # each) made glibc's malloc trim and re-fault its heap, 2 us per event (measured)
            fields = dumps(data if _SET_BY_EXPORT.isdisjoint(data) else public_fields(data),
                           plain, options)
        except (UnicodeEncodeError, refused):  # undecodable bytes, or an int past 64 bits
            add(stdlib_record_line(item, store_id))
            continue
        add(head)
        add(b"}\n" if fields == b"{}" else b"," + fields[1:] + b"\n")
    return b"".join(out)


def msgpack_records(items: Iterable[Event | Corrupt], store_id: str) -> bytes:
    """A batch as concatenated msgpack maps (same records as JSON Lines)."""
    return b"".join(codec.pack(record(item, store_id)) for item in items)


def jsonable(value: Any) -> Any:
    """A record as plain JSON values, for a surface that serializes it itself (MCP, HTTP).

    msgpack can hold bytes and non-string keys (a newer ghost's event); JSON cannot. Same
    conversions as `ghost events`: bytes as base64 text, anything else unknown as its repr."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return repr(value)
