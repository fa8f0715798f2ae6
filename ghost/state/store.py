"""Opening the event store from the CLI side, and turning store failures into GhostErrors."""

from __future__ import annotations

import _thread
import os
from collections.abc import Iterator
from contextlib import contextmanager

from events.environment import WHAT_TO_DO
from events.store import DATA, Store, StoreError
from ghost import datadir
from ghost.errors import IO, NOPERM, TEMPFAIL, GhostError
from projections.checkpoint import VIEWS

_open: dict[str, Store] = {}
# LMDB allows one environment per file per process: `ghost serve` and `ghost ui` call actions
# from several threads, and two first calls at once must not both open it.
_opening = _thread.allocate_lock()

DATA_ERR = 65  # EX_DATAERR: the store's file or a value in it is damaged
# A full disk and a failing disk share EX_IOERR; their messages say which one it is.
_EXIT = {"disk_full": IO, "io_error": IO, "map_full": TEMPFAIL, "unsafe": NOPERM,
         "readonly": 1, "io": 1, "damaged": DATA_ERR}


def as_ghost_error(exc: StoreError) -> GhostError:
    return GhostError(str(exc), _EXIT.get(exc.kind, 1))


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except StoreError as exc:
        raise as_ghost_error(exc) from exc


def open_store(write: bool) -> Store | None:
    """The process-wide store; None for reads when nothing has been recorded yet."""
    base = datadir.prepare(create=write)
    if base is None:
        return None
    path = datadir.store_dir(base)
    store = _open.get(path)
    if store is None:
        with _opening:
            store = _open.get(path)  # opened by another thread meanwhile
            if store is None:
                refuse_emptied(base, path)
                with store_errors():
                    store = Store.open(path, create=write, views=VIEWS,
                                       map_floor=datadir.map_floor())
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


def refuse_emptied(base: str, path: str) -> None:
    """An empty data file beside task logs is a lost history, not a new store: opening it
    would silently start one (the store itself checks its lock and wake files too)."""
    try:
        if os.stat(os.path.join(path, DATA)).st_size:
            return
        logs = [n for n in os.listdir(datadir.logs_dir(base)) if n.endswith(".log")]
    except FileNotFoundError:
        return
    if logs:
        raise GhostError(f"the event store {os.path.join(path, DATA)} is damaged: it is empty, "
                         f"but {len(logs)} task log(s) sit beside it; {WHAT_TO_DO}", DATA_ERR)
