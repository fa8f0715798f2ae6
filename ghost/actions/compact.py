"""`compact`: give the space freed by `cleanup` back to the file system (events.compaction)."""

from __future__ import annotations

from typing import NamedTuple

from ghost import datadir
from ghost.errors import GhostError
from ghost.state.store import open_store, store_errors


class Compacted(NamedTuple):
    store: str  # the store directory
    before: int  # data file size before, bytes
    after: int  # and after


def compact(*, via: str) -> Compacted:
    """Rewrite the store's data file without free pages; concurrent writers wait meanwhile."""
    del via  # compaction changes no event: nothing is recorded about who ran it
    store = open_store(write=False)
    if store is None:
        raise GhostError(f"no event store in {datadir.data_dir()}: nothing to compact")
    if store.readonly:
        raise GhostError(f"cannot compact: the event store in {store.path} is read-only")
    with store_errors():
        before, after = store.compact()
    return Compacted(store.path, before, after)
