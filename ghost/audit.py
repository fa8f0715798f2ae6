"""The audit trail and the event feed: the log read back for people and for other tools.

`history` selects events (one task's whole life through the per-task index, or the whole log)
and pairs each with its task's start time, for durations. `feed` yields the log in batches,
resumably and optionally forever. `jsonl` and `msgpack_records` turn events into the export
records documented in docs/events.md. Nothing here prints.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from events import codec
from events.types import SCHEMAS, SPAWNED, Corrupt, Event
from ghost.errors import USAGE, GhostError, TaskNotFound
from ghost.state import open_store, store_errors
from ghost.tasks import resolve
from ghost.timeparse import parse_time

EVENT_TYPES = tuple(sorted(SCHEMAS))
# Names every export record sets itself; an event field with one of these names (none has one
# today) is moved under "fields" instead of overwriting it.
RESERVED = frozenset({"seq", "time", "time_ns", "type", "task", "v", "store", "fields"})
SECRET_FIELDS = frozenset({"env"})  # values never leave the store, whatever event holds them
CHUNK = 10_000  # events per read transaction: large enough to amortize, small enough to stream


@dataclass(frozen=True, slots=True)
class Entry:
    """One history row: an event (or a corrupt entry) and the facts needed to describe it."""

    item: Event | Corrupt
    time_ns: int  # a corrupt entry has no stamp of its own: the one of the event before it
    started_ns: int | None = None  # when its task was spawned, for durations


@dataclass(frozen=True, slots=True)
class History:
    entries: Iterator[Entry]
    task: str | None  # the resolved task id when one was asked for
    last_seq: int  # the highest sequence number in the store (sizes the seq column)
    store_id: str


@dataclass(frozen=True, slots=True)
class Feed:
    store_id: str
    batches: Iterator[list[Event | Corrupt]]


def check_types(types: Sequence[str]) -> frozenset[str]:
    unknown = [t for t in types if t not in SCHEMAS]
    if unknown:
        raise GhostError(f"unknown event type {unknown[0]!r}; known types: "
                         f"{', '.join(EVENT_TYPES)}", USAGE)
    return frozenset(types)


def history(ident: str | None = None, since: str | None = None, until: str | None = None,
            types: Sequence[str] = ()) -> History:
    """Events in sequence order: one task's (by id or prefix) or every task's, filtered."""
    wanted = check_types(types)
    now = time.time_ns()
    since_ns = parse_time(since, now) if since else None
    until_ns = parse_time(until, now) if until else None
    if since_ns is not None and until_ns is not None and since_ns > until_ns:
        raise GhostError(f"--since {since} is later than --until {until}", USAGE)
    store = open_store(write=False)
    if store is None:
        if ident is not None:
            raise TaskNotFound(ident)
        return History(iter(()), None, 0, "")
    with store_errors():
        task = resolve(store, ident) if ident is not None else None
        items: Iterable[Event | Corrupt] = (store.task_events(task) if task is not None
                                            else store.scan(chunk=CHUNK))
        last = store.last_seq()
        store_id = store.store_id
    return History(_guarded(_select(items, since_ns, until_ns, wanted)), task, last, store_id)


def _guarded(entries: Iterator[Entry]) -> Iterator[Entry]:
    with store_errors():
        yield from entries


def _select(items: Iterable[Event | Corrupt], since_ns: int | None, until_ns: int | None,
            wanted: frozenset[str]) -> Iterator[Entry]:
    started: dict[str, int] = {}
    last_ns = 0
    for item in items:
        if isinstance(item, Corrupt):
            stamp, kind = last_ns, "corrupt"
        else:
            stamp = last_ns = item.time_ns
            kind = item.type
            if kind == SPAWNED and item.known:
                started[item.task] = stamp
        if wanted and kind not in wanted:
            continue
        if (since_ns is not None and stamp < since_ns) or \
                (until_ns is not None and stamp > until_ns):
            continue
        task = item.task if isinstance(item, Event) else ""
        yield Entry(item, stamp, started.get(task))


def feed(after: int = 0, follow: bool = False,
         stop: Callable[[], bool] | None = None) -> Feed:
    """The log after seq `after` (exclusive) in batches; with `follow`, forever after that.

    Batches come from short read transactions of at most CHUNK events, so a consumer of a huge
    log never holds a snapshot (or the whole log in memory). While following, an empty batch
    means "nothing new yet". `stop` ends a follow (checked on every wake-up step).
    """
    if after < 0:
        raise GhostError(f"invalid --from {after}: must be 0 or more", USAGE)
    store = open_store(write=follow)  # following an empty data dir creates it, then waits
    if store is None:
        return Feed("", iter(()))
    with store_errors():
        last = store.last_seq()
        store_id = store.store_id
    if after > last:
        raise GhostError(f"--from {after} is past the end of this event log (its last seq is "
                         f"{last}): the cursor belongs to another store (this one is "
                         f"{store_id})")

    def batches() -> Iterator[list[Event | Corrupt]]:
        position = after
        with store_errors():
            while True:
                batch = store.read(position, CHUNK)
                if not batch:
                    break
                position = batch[-1].seq
                yield batch
            if not follow:
                return
            from events.follow import follow as follow_store

            for batch in follow_store(store, position, stop):
                # follow() reads everything new at once; pass it on in CHUNK-sized slices
                for start in range(0, len(batch), CHUNK):
                    yield batch[start:start + CHUNK]
                if not batch:
                    yield batch

    return Feed(store_id, batches())


# -- export records ---------------------------------------------------------------------------

def _public_fields(data: Any) -> dict[str, Any]:
    """An event's fields as exported: secrets dropped, reserved names moved under "fields"."""
    if SECRET_FIELDS.isdisjoint(data) and RESERVED.isdisjoint(data):
        return data
    kept = {k: v for k, v in data.items() if k not in SECRET_FIELDS and k not in RESERVED}
    moved = {k: v for k, v in data.items() if k in RESERVED and k not in SECRET_FIELDS}
    if moved:
        kept["fields"] = moved
    return kept


def rfc3339(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def record(item: Event | Corrupt, store_id: str) -> dict[str, Any]:
    """The export record of one log entry (see docs/events.md)."""
    if isinstance(item, Corrupt):
        return {"seq": item.seq, "type": "corrupt", "reason": item.reason, "store": store_id}
    head = {"seq": item.seq, "time": rfc3339(item.time_ns), "time_ns": item.time_ns,
            "type": item.type, "task": item.task, "v": item.v, "store": store_id}
    head.update(_public_fields(item.data))
    return head


def _plain(value: Any) -> Any:
    """JSON for the msgpack values JSON lacks (ghost never writes them; a newer ghost might)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return repr(value)


_quote = json.encoder.encode_basestring  # type: ignore[attr-defined]
# One C encoder made once and reused: json.dumps builds a new one on every call, which cost
# about as much as the encoding itself.
_c_make = getattr(json.encoder, "c_make_encoder", None)
if _c_make is not None:
    _chunks = _c_make(None, _plain, _quote, None, ":", ",", False, False, True)

    def _encode(value: Any) -> str:
        return "".join(_chunks(value, 0))
else:  # an interpreter without the C accelerator
    _encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False,
                               default=_plain).encode


def jsonl(items: Sequence[Event | Corrupt], store_id: str) -> bytes:
    """JSON Lines for a batch, built as one string: the fixed head of every record is
    formatted directly and only the event's own fields go through the JSON encoder."""
    store_tail = f',"store":{_quote(store_id)}'
    lines: list[str] = []
    add = lines.append
    cached_second, cached_text = -1, ""
    gmtime, strftime = time.gmtime, time.strftime
    for item in items:
        if not isinstance(item, Event):
            add(_encode(record(item, store_id)))
            continue
        ns = item.time_ns
        second, rest = divmod(ns, 1_000_000_000)
        if second != cached_second:
            cached_second = second
            cached_text = strftime("%Y-%m-%dT%H:%M:%S", gmtime(second))
        fields = _encode(_public_fields(item.data))
        add(f'{{"seq":{item.seq},"time":"{cached_text}.{rest // 1000:06d}Z","time_ns":{ns},'
            f'"type":{_quote(item.type)},"task":{_quote(item.task)},"v":{item.v}{store_tail}'
            + ("}" if fields == "{}" else "," + fields[1:]))
    lines.append("")
    return utf8("\n".join(lines))


def utf8(text: str) -> bytes:
    """Valid UTF-8 always: bytes that were not UTF-8 (kept in the log as surrogate escapes,
    e.g. a non-UTF-8 argv) come out as U+FFFD, as everywhere else in ghost's output."""
    try:
        return text.encode()
    except UnicodeEncodeError:
        from ghost.render import printable

        return printable(text).encode()


def msgpack_records(items: Sequence[Event | Corrupt], store_id: str) -> bytes:
    """A batch as concatenated msgpack maps (same records as JSON Lines)."""
    return b"".join(codec.pack(record(item, store_id)) for item in items)
