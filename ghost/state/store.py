"""Opening the event store from the CLI side, and turning store failures into GhostErrors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from events.store import Store, StoreError
from ghost import datadir
from ghost.errors import IO, NOPERM, TEMPFAIL, GhostError
from projections.checkpoint import VIEWS

_open: dict[str, Store] = {}

_EXIT = {"disk_full": IO, "map_full": TEMPFAIL, "unsafe": NOPERM, "readonly": 1, "io": 1}


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        raise GhostError(str(exc), _EXIT.get(exc.kind, 1)) from exc


def open_store(write: bool) -> Store | None:
    """The process-wide store; None for reads when nothing has been recorded yet."""
    base = datadir.prepare(create=write)
    if base is None:
        return None
    path = datadir.store_dir(base)
    store = _open.get(path)
    if store is not None and store.readonly and write:
        raise GhostError(f"cannot record anything: the event store in {path} is read-only")
    if store is None:
        with store_errors():
            store = Store.open(path, create=write, views=VIEWS, map_floor=datadir.map_floor())
        if store is None:
            return None
        _open[path] = store
    if write and store.readonly:
        raise GhostError(f"cannot record anything: the event store in {path} is read-only")
    return store


def close_stores() -> None:
    """Close every store this process opened (before a fork: an LMDB environment must not be
    used by a forked child, and the parent opens a fresh one when it needs it again)."""
    while _open:
        _open.popitem()[1].close()
