"""What the store offers the views it keeps current: rows inside a transaction, the view
protocol, and the count of events a view had to skip (unknown types, corrupt values)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

import lmdb

from events import codec
from events.types import Corrupt, Event


class Rows:
    """A view's rows inside one transaction: string keys, plain msgpack-able values."""

    def __init__(self, txn: lmdb.Transaction, db: Any) -> None:
        self._txn = txn
        self._db = db

    def get(self, key: str) -> Any:
        raw = self._txn.get(key.encode(), db=self._db)
        return None if raw is None else codec.unpack(raw)

    def put(self, key: str, value: Any) -> None:
        self._txn.put(key.encode(), codec.pack(value), db=self._db)

    def delete(self, key: str) -> None:
        self._txn.delete(key.encode(), db=self._db)

    def items(self) -> Iterator[tuple[str, Any]]:
        for key, raw in self._txn.cursor(db=self._db):
            yield key.decode(), codec.unpack(raw)

    def clear(self) -> None:
        self._txn.drop(self._db, delete=False)


class Projection(Protocol):
    """A view kept current inside every write transaction (see projections.checkpoint)."""

    name: str
    version: int

    def apply(self, rows: Rows, event: Event) -> None: ...


MAX_SKIPPED_SEQS = 20


def skipped_from(state: Mapping[str, Any] | None) -> dict[str, Any]:
    """A view's running counters: events it skipped, and the latest time of any event seen
    (`max_time`, which tells time travel which snapshots it may start from)."""
    state = state or {}
    return {"unknown": int(state.get("unknown", 0)), "corrupt": int(state.get("corrupt", 0)),
            "corrupt_seqs": list(state.get("corrupt_seqs", ())),
            "max_time": int(state.get("max_time", 0))}


def count_skipped(skipped: dict[str, Any], event: Event | Corrupt) -> None:
    """Count an event a view could not use: corrupt (first seqs kept) or of an unknown type."""
    if isinstance(event, Corrupt):
        skipped["corrupt"] += 1
        if len(skipped["corrupt_seqs"]) < MAX_SKIPPED_SEQS:
            skipped["corrupt_seqs"].append(event.seq)
    else:
        skipped["unknown"] += 1
