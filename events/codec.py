"""The only module that knows msgpack.

Wire layout of one event value (the key holds the sequence number):
    {"t": type, "k": task id, "ts": wall-clock ns, "v": schema version, "d": {fields}}

Decoding never raises: a value that is not a well-formed event comes back as `Corrupt`; an
unknown type or a version newer than this code knows comes back as an `Event` with
`known=False`, untouched. Older versions are upcast by the pure functions in `UPCASTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import msgpack

from events.types import SCHEMAS, Corrupt, Event, check_fields, fields_problem

# (type, version) -> function turning that version's fields into the next version's.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[tuple[str, int], Upcaster] = {}

# Strings holding undecodable bytes (non-UTF-8 argv, paths) carry them as surrogate escapes, as
# os.fsdecode does; they are stored as those exact bytes and read back the same way.
_ERRORS = "surrogateescape"
_packer = msgpack.Packer(use_bin_type=True, unicode_errors=_ERRORS)


def encode(event: Event) -> bytes:
    data = event.data
    packed: bytes = _packer.pack({"t": event.type, "k": event.task, "ts": event.time_ns,
                                  "v": event.v,
                                  "d": data if data.__class__ is dict else dict(data)})
    return packed


def upcast(event_type: str, version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Bring `data` from `version` up to the current version of its type, step by step."""
    current = SCHEMAS[event_type][0]
    while version < current:
        step = UPCASTERS.get((event_type, version))
        if step is None:
            raise ValueError(f"no upcaster for {event_type} v{version}")
        data = step(data)
        version += 1
    return version, data


def decode(seq: int, raw: bytes) -> Event | Corrupt:
    try:
        obj = msgpack.unpackb(raw, raw=False, unicode_errors=_ERRORS)
    except (ValueError, TypeError) as exc:  # every msgpack decode error is a ValueError
        return Corrupt(seq, f"undecodable: {exc}", bytes(raw))
    if obj.__class__ is not dict:
        return Corrupt(seq, f"not a map but {type(obj).__name__}", bytes(raw))
    get = obj.get
    event_type, task, ts, version, data = get("t"), get("k"), get("ts"), get("v"), get("d")
    # Exact classes: msgpack makes no subclasses, and bool (an int subclass) is no timestamp.
    if event_type.__class__ is not str or task.__class__ is not str:
        return Corrupt(seq, "type or task id missing", bytes(raw))
    if ts.__class__ is not int or version.__class__ is not int or data.__class__ is not dict:
        return Corrupt(seq, "time, version or fields malformed", bytes(raw))
    schema = SCHEMAS.get(event_type)
    if schema is None or version > schema[0]:
        return Event(event_type, task, data, ts, version, seq, known=False)
    if version < schema[0]:
        try:
            version, data = upcast(event_type, version, data)
        except (ValueError, LookupError, TypeError, AttributeError, ArithmeticError) as exc:
            return Corrupt(seq, f"cannot upcast: {exc!r}", bytes(raw))
        problem = check_fields(event_type, data)
    else:
        problem = fields_problem(event_type, data)
    if problem:
        return Corrupt(seq, problem, bytes(raw))
    return _new_event(Event, (event_type, task, data, ts, version, seq, True))


_new_event = tuple.__new__  # Event's own __new__ is Python code; this builds the same tuple


def pack(obj: Any) -> bytes:
    """Encode a plain value (views, checkpoints, export streams)."""
    packed: bytes = _packer.pack(obj)
    return packed


def unpack(raw: bytes) -> Any:
    return msgpack.unpackb(raw, raw=False, unicode_errors=_ERRORS)


def pack_stream(objs: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    packer = msgpack.Packer(use_bin_type=True, unicode_errors=_ERRORS)
    for obj in objs:
        yield packer.pack(obj)


def unpack_stream(chunks: Iterable[bytes]) -> Iterator[Any]:
    unpacker = msgpack.Unpacker(raw=False, unicode_errors=_ERRORS)
    for chunk in chunks:
        unpacker.feed(chunk)
        yield from unpacker
