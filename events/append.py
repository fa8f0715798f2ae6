"""One batch appended inside a write transaction, with the views kept in step.

`events.store.Store` owns the transaction (retries, map growth, errors); this module owns what
happens inside it: the seqs, the per-task index, the views, checkpoints and snapshots.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import lmdb

from events import codec, timeline
from events.errors import StoreError
from events.keys import key_seq, seq_key
from events.types import SCHEMAS, Event, fields_problem
from events.views import Projection, Rows, count_skipped, skipped_from

MAX_TASK_ID = 400  # bytes; index keys are task id + NUL + 8-byte seq, LMDB keys <= 511 bytes

# Given the views as of the transaction's start, returns the events to append (maybe none).
Decide = Callable[[Mapping[str, Rows]], Sequence[Event]]


class Databases(NamedTuple):
    """The LMDB databases of one environment (handles; None in a read-only store without them)."""
    events: Any
    by_task: Any
    meta: Any
    views: dict[str, Any]
    snaps: Any
    times: Any


def append_batch(txn: lmdb.Transaction, dbs: Databases, views_: Sequence[Projection],
                 decide: Decide, meta_defaults: Mapping[str, Any] | None) -> list[Event]:
    """Inside write transaction `txn`: bring the views up to date, let `decide` choose the
    events, append them with the next seqs, apply them to the views and checkpoint."""
    for key, value in (meta_defaults or {}).items():
        txn.put(key.encode(), codec.pack(value), db=dbs.meta, overwrite=False)
    cur = txn.cursor(db=dbs.events)
    last = key_seq(cur.key()) if cur.last() else 0
    views = {v.name: Rows(txn, dbs.views[v.name]) for v in views_}
    skipped = {v.name: _bring_up_to_date(txn, dbs, v, views[v.name], last)
               for v in views_}
    new = decide(views)
    before = last
    done: list[Event] = []
    for event in new:
        last += 1
        stamped = event.with_seq(last)
        task_key = _task_key(stamped.task)
        readable = _readable(stamped)
        if not txn.put(seq_key(last), codec.encode(stamped), db=dbs.events, append=True):
            raise StoreError(f"sequence number {last} already taken; log left unchanged")
        txn.put(task_key + b"\0" + seq_key(last), b"", db=dbs.by_task)
        for view in views_:  # views see exactly what a reader's fold would see
            if readable:
                view.apply(views[view.name], stamped)
            else:
                count_skipped(skipped[view.name], stamped)
            counters = skipped[view.name]
            counters["max_time"] = max(counters["max_time"], stamped.time_ns)
        done.append(stamped)
    timeline.note_times(txn, dbs.times, dbs.meta, done)
    for view in views_:
        state = {"version": view.version, "applied": last, **skipped[view.name]}
        txn.put(b"view:" + view.name.encode(), codec.pack(state), db=dbs.meta)
        if timeline.snapshot_due(before, last):
            timeline.write_snapshot(txn, dbs.snaps, dbs.meta, dbs.views[view.name],
                                    view.name, view.version, last, state["max_time"])
    return done

def _bring_up_to_date(txn: lmdb.Transaction, dbs: Databases, view: Projection, rows: Rows,
                      last: int) -> dict[str, Any]:
    """Apply what the view has not seen (all of it if it is missing or of another version).

    Returns the view's running count of events it had to skip (unknown or corrupt).
    """
    raw = txn.get(b"view:" + view.name.encode(), db=dbs.meta)
    state = None if raw is None else codec.unpack(raw)
    if isinstance(state, dict) and state.get("version") == view.version:
        applied = int(state.get("applied", 0))
        skipped = skipped_from(state)
        if applied == last:
            return skipped
    else:
        rows.clear()  # missing or built by other code: rebuild from the first event
        applied = 0
        skipped = skipped_from(None)
    cur = txn.cursor(db=dbs.events)
    if cur.set_range(seq_key(applied + 1)):
        for key, value in cur:
            event = codec.decode(key_seq(key), value)
            if isinstance(event, Event) and event.known:
                view.apply(rows, event)
            else:
                count_skipped(skipped, event)
            if isinstance(event, Event):
                skipped["max_time"] = max(skipped["max_time"], event.time_ns)
    return skipped


def _readable(event: Event) -> bool:
    """Whether readers will decode `event` as a known event (False: opaque, from a newer ghost).

    Refuses what they would report as corrupt, so ghost never writes an event it cannot read.
    """
    if not isinstance(event.type, str) or not isinstance(event.task, str) \
            or type(event.time_ns) is not int or type(event.v) is not int:
        raise StoreError(f"refusing to append a malformed event: {event!r:.200}", "invalid")
    schema = SCHEMAS.get(event.type)
    if schema is None or event.v > schema[0]:
        return False
    problem: str | None
    if event.v < schema[0]:
        problem = f"{event.type} v{event.v} is older than the current v{schema[0]}"
    else:
        problem = fields_problem(event.type, event.data)
    if problem:
        raise StoreError(f"refusing to append a malformed event: {problem}", "invalid")
    return True


def _task_key(task: str) -> bytes:
    """The task id as an index key prefix; ids that would break the index are refused."""
    key = task.encode()
    if not key or len(key) > MAX_TASK_ID or b"\0" in key:
        raise StoreError(f"task id {task[:40]!r} cannot be stored: it is empty, holds a NUL "
                         f"byte or is longer than {MAX_TASK_ID} bytes", "invalid")
    return key


