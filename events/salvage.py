"""Every readable event of a damaged store, for `ghost doctor --salvage`.

Two ways in, best first. When the data file passes its meta-page check, LMDB reads the events
database in order; a value that does not decode, a key of the wrong length, or a damaged page
is skipped and counted. When LMDB cannot read (a truncated or overwritten file, a damaged
tree), the leaf pages are read one by one (events.lmdbfile.leaf_items): events are never
changed once written, so any intact copy of an event's page gives the event. What LMDB read
wins over a page copy; page copies fill only the seqs it could not read.
"""

from __future__ import annotations

import contextlib
import os
from typing import NamedTuple

import lmdb

from events import codec, lmdbfile
from events.environment import DATA
from events.keys import key_seq
from events.types import Event


class Salvaged(NamedTuple):
    events: list[Event]  # in their old seq order (their seqs are the old ones)
    unreadable: int  # values or keys that could not be read as an event
    method: str  # "lmdb", "pages" or "lmdb+pages"
    store_id: str  # the damaged store's id, if it could be read ("" if not)


def readable_events(path: str) -> Salvaged:
    """The readable events of the store in directory `path` (never written to)."""
    data = os.path.join(path, DATA)
    found: dict[int, Event] = {}
    ids: list[str] = []
    unreadable = 0
    complete = False
    if os.path.exists(data) and lmdbfile.problem(data) is None and os.path.getsize(data):
        complete, unreadable = _through_lmdb(path, found, ids)
    method = "lmdb"
    if not complete:
        method = "lmdb+pages" if found else "pages"
        for seq, event in _through_pages(data, ids):
            found.setdefault(seq, event)
        unreadable = max(found, default=0) - len(found)  # seqs with no readable copy
    return Salvaged([found[s] for s in sorted(found)], unreadable, method,
                    ids[0] if ids else "")


def _store_id(raw: bytes) -> str | None:
    """The store id if `raw` is one as ghost writes it (32 hex digits), else None."""
    try:
        value = codec.unpack(raw)
    except ValueError:
        return None
    if isinstance(value, str) and len(value) == 32 and all(c in "0123456789abcdef"
                                                           for c in value):
        return value
    return None


def _through_lmdb(path: str, found: dict[int, Event], ids: list[str]) -> tuple[bool, int]:
    """Read the events database with LMDB; (whether every page was readable, values skipped)."""
    unreadable = 0
    try:
        env = lmdb.open(path, readonly=True, lock=False, max_dbs=8, subdir=True)
    except lmdb.Error:
        return False, 0
    try:
        with env.begin() as txn:
            with contextlib.suppress(lmdb.Error):
                raw = txn.get(b"store_id", db=env.open_db(b"meta", txn=txn, create=False))
                ids.extend(filter(None, [_store_id(raw) if raw is not None else None]))
            db = env.open_db(b"events", txn=txn, create=False)
            for key, raw in txn.cursor(db=db):
                event = codec.decode(key_seq(key), raw) if len(key) == 8 else None
                if isinstance(event, Event):
                    found[event.seq] = event
                else:
                    unreadable += 1
    except lmdb.NotFoundError:
        return True, 0  # a store without an events database: nothing was ever recorded
    except lmdb.Error:
        return False, unreadable
    finally:
        env.close()
    return True, unreadable


def _through_pages(data: str, ids: list[str]) -> list[tuple[int, Event]]:
    if not os.path.exists(data):
        return []
    out = []
    for key, raw in lmdbfile.leaf_items(data):
        if key == b"store_id" and not ids:
            ids.extend(filter(None, [_store_id(raw)]))
        if len(key) != 8:
            continue
        event = codec.decode(key_seq(key), raw)
        if isinstance(event, Event):
            out.append((event.seq, event))
    return out
