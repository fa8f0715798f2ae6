"""What makes time travel cheap on a long log: view snapshots and a coarse time index.

Both are written inside the same write transaction as the events, so they are exact:

* every `SNAPSHOT_EVERY` events each view's rows are copied as they stand, with the highest
  wall-clock time of any event up to that seq (`max_time`). A reader asking for the view as of
  time T starts from the latest snapshot whose `max_time` is at or before T: every event it
  contains is stamped at or before T, whatever the clocks did.
* for each block of `TIME_BLOCK` seqs, the lowest and highest time stamped in it. A reader
  skips, without decoding, every block whose lowest time is after T.

A log partly written by code that kept no index is safe: the index only vouches for blocks at
or after the first seq it covered (`times_from` in meta).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import lmdb

from events import codec
from events.types import Event

SNAPSHOT_EVERY = 100_000  # each copies the view (~11 MB in bench/history.py's 1M-event store)
TIME_BLOCK = 10_000

_BLOCK = struct.Struct(">Q")


def note_times(txn: lmdb.Transaction, times_db: Any, meta_db: Any,
               events: Iterable[Event]) -> None:
    """Widen each touched block's [min, max] time by the events just appended."""
    spans: dict[int, list[int]] = {}
    first = 0
    for event in events:
        first = first or event.seq
        span = spans.setdefault(event.seq // TIME_BLOCK, [event.time_ns, event.time_ns])
        span[0] = min(span[0], event.time_ns)
        span[1] = max(span[1], event.time_ns)
    if not spans:
        return
    txn.put(b"times_from", codec.pack(first), db=meta_db, overwrite=False)
    for block, (low, high) in spans.items():
        key = _BLOCK.pack(block)
        old = txn.get(key, db=times_db)
        if old is not None:
            old_low, old_high = codec.unpack(old)
            low, high = min(low, old_low), max(high, old_high)
        txn.put(key, codec.pack([low, high]), db=times_db)


def write_snapshot(txn: lmdb.Transaction, snaps_db: Any, meta_db: Any, view_db: Any,
                   name: str, version: int, seq: int, max_time: int) -> None:
    prefix = _snap_prefix(name, seq)
    for key, value in txn.cursor(db=view_db):
        txn.put(prefix + key, value, db=snaps_db)
    header = {"version": version, "seq": seq, "max_time": max_time}
    txn.put(_header_key(name, seq), codec.pack(header), db=meta_db)


def snapshot_due(before: int, after: int) -> bool:
    return after // SNAPSHOT_EVERY > before // SNAPSHOT_EVERY


def latest_snapshot(txn: lmdb.Transaction, snaps_db: Any, meta_db: Any, name: str,
                    version: int, at_ns: int) -> tuple[int, dict[str, Any]] | None:
    """(seq, rows) of the newest snapshot of `name` holding only events stamped <= at_ns."""
    best = None
    prefix = b"snap:" + name.encode() + b":"
    cur = txn.cursor(db=meta_db)
    if cur.set_range(prefix):
        for key, raw in cur:
            if not key.startswith(prefix):
                break
            header = codec.unpack(raw)
            if header.get("version") == version and header.get("max_time", at_ns + 1) <= at_ns:
                best = int(header["seq"])
    if best is None:
        return None
    rows: dict[str, Any] = {}
    start = _snap_prefix(name, best)
    cur = txn.cursor(db=snaps_db)
    if cur.set_range(start):
        for key, raw in cur:
            if not key.startswith(start):
                break
            rows[key[len(start):].decode()] = codec.unpack(raw)
    return best, rows


def skippable_blocks(txn: lmdb.Transaction, times_db: Any, meta_db: Any,
                     at_ns: int) -> set[int]:
    """Blocks every event of which is stamped after `at_ns` (safe to skip unread)."""
    raw = txn.get(b"times_from", db=meta_db)
    if raw is None:
        return set()
    first = codec.unpack(raw)
    first_block = 0 if first <= 1 else -(-first // TIME_BLOCK)  # the first block fully covered
    skip = set()
    for key, value in txn.cursor(db=times_db):
        block = _BLOCK.unpack(key)[0]
        if block >= first_block and codec.unpack(value)[0] > at_ns:
            skip.add(block)
    return skip


def _snap_prefix(name: str, seq: int) -> bytes:
    return name.encode() + b"\0" + _BLOCK.pack(seq) + b"\0"


def _header_key(name: str, seq: int) -> bytes:
    return b"snap:" + name.encode() + b":" + _BLOCK.pack(seq)
