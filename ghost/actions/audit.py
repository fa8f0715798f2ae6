"""The audit trail and the event feed: the log read back for people and for other tools.

`history` selects events (one task's whole life through the per-task index, or the whole log)
and pairs each with its task's start time, for durations. `feed` yields the log in batches,
resumably and optionally forever; ghost.state.records turns them into records. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import starmap

from events import codec
from events.store import Store
from events.types import SCHEMAS, SPAWNED, Corrupt, Event
from ghost.errors import USAGE, GhostError, TaskNotFound
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import resolve
from ghost.timeparse import parse_time

EVENT_TYPES = tuple(sorted(SCHEMAS))
CHUNK = 10_000  # events per read transaction: large enough to amortize, small enough to stream
RECENT_CHUNK = 2000  # events read per step backwards from the end of the log


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
    # Each batch is iterated once. The backlog's batches decode lazily, one event at a time.
    batches: Iterator[Iterable[Event | Corrupt]]
    last: int = 0  # the last seq in the log when the feed started


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


def recent(ident: str | None, since: str | None,
           limit: int) -> tuple[list[Event | Corrupt], str, bool]:
    """The last `limit` events (of one task, or all) at or after `since`, oldest first; the
    store id; and whether older matching events were left out.

    For all tasks the log is read backwards from its end in chunks, so the most recent events
    cost a few short reads however long the log is (`history` would scan it all).
    """
    if ident is not None:
        found = history(ident, since)
        chosen: list[Event | Corrupt] = [entry.item for entry in found.entries]
        store_id = found.store_id
    else:
        store = open_store(write=False)
        if store is None:
            return [], "", False
        with store_errors():
            chosen = _recent(store, parse_time(since) if since else None, limit)
            store_id = store.store_id
    return chosen[-limit:], store_id, len(chosen) > limit


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
        lo = max(0, hi - RECENT_CHUNK)
        fresh = _keep(store.read(lo, hi - lo), since_ns)
        picked[:0] = fresh
        if since_ns is not None and not fresh:
            break
        hi = lo
    return picked


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

    def batches() -> Iterator[Iterable[Event | Corrupt]]:
        position = after
        with store_errors():
            while True:
                raw = store.read_raw(position, CHUNK)
                if not raw:
                    break
                position = raw[-1][0]
                yield starmap(codec.decode, raw)
            if not follow:
                return
            from events.follow import follow as follow_store

            for batch in follow_store(store, position, stop):
                # follow() reads everything new at once; pass it on in CHUNK-sized slices
                for start in range(0, len(batch), CHUNK):
                    yield batch[start:start + CHUNK]
                if not batch:
                    yield batch

    return Feed(store_id, batches(), last)
