"""`ghost doctor --salvage`: copy every readable event into a new store, keep the damaged one.

The new store is built beside the old one (`store.salvage-<time>`), its views rebuilt by the
ordinary appends, and only then swapped in: the damaged store is renamed
`store.damaged-<time>` and never changed, so nothing is lost if the salvage itself fails.
The events get new sequence numbers 1..N (unreadable ones are left out). The store keeps its id
(when it can be read): it is the same history, and the monitors of tasks still running write
their ends only into the store they started with. A consumer of `ghost events --from` reads
again from the start after a salvage that left events out (the command says so).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import NamedTuple

from events.salvage import readable_events
from events.store import DATA, Store
from ghost import datadir
from ghost.errors import GhostError
from ghost.state.store import close_stores, store_errors
from projections.checkpoint import VIEWS

BATCH = 1000  # events per write transaction of the new store


class Salvage(NamedTuple):
    recovered: int  # events copied into the new store
    unreadable: int  # events (or seqs) that could not be read
    method: str  # how they were read: lmdb, pages, lmdb+pages
    store: str  # the new store's directory
    kept_at: str  # where the damaged store now is
    orphan_logs: int  # logs of tasks with no readable event, moved to `kept_at`/logs


def salvage(*, via: str) -> Salvage:
    del via  # every surface may salvage; nothing is recorded about who did it
    base = datadir.prepare(create=False)
    path = datadir.store_dir(base) if base is not None else ""
    if base is None or not os.path.lexists(os.path.join(path, DATA)):
        raise GhostError(f"no event store in {path or datadir.data_dir()}: nothing to salvage")
    close_stores()
    found = readable_events(path)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    fresh, kept = f"{path}.salvage-{stamp}", f"{path}.damaged-{stamp}"
    if os.path.lexists(fresh) or os.path.lexists(kept):
        raise GhostError(f"{fresh} or {kept} exists already; try again in a second")
    try:
        with store_errors():
            store = Store.open(fresh, create=True, views=VIEWS, map_floor=datadir.map_floor(),
                               store_id=found.store_id)
            assert store is not None
            try:
                for start in range(0, len(found.events), BATCH):
                    store.append(found.events[start:start + BATCH])
            finally:
                store.close()
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)  # the damaged store is still in place
        raise
    try:
        os.rename(path, kept)
        os.rename(fresh, path)
    except OSError as exc:
        raise GhostError(f"cannot swap in the salvaged store {fresh}: {exc.strerror}; the "
                         f"damaged store is at {kept if os.path.exists(kept) else path}") from exc
    known = {event.task for event in found.events}
    moved = _move_orphan_logs(datadir.logs_dir(base), known, os.path.join(kept, "logs"))
    return Salvage(len(found.events), found.unreadable, found.method, path, kept, moved)


def _move_orphan_logs(logs: str, known: set[str], aside: str) -> int:
    """Logs of tasks the new store does not know go beside the damaged store they belong to."""
    orphans = [name for name in sorted(os.listdir(logs)) if name.endswith(".log")
               and name.removesuffix(".log") not in known] if os.path.isdir(logs) else []
    if orphans:
        os.makedirs(aside, mode=0o700, exist_ok=True)
    for name in orphans:
        os.rename(os.path.join(logs, name), os.path.join(aside, name))
    return len(orphans)
