"""The event log: one LMDB environment, appended to by many processes at once.

Databases in the environment:
    events    8-byte big-endian seq -> encoded event (append-only, gap-free)
    by_task   task id + NUL + 8-byte seq -> b"" (one task's events without a scan)
    meta      small bookkeeping values (store id, view checkpoints)
    view:*    materialized views, maintained in the same write transaction as the events

Every write transaction is synced before `transact` returns (LMDB `sync=True`), so an event is
durable once the caller sees its sequence number. After each commit one byte of the `wake` file
is rewritten so followers (see `events.follow`) are woken by inotify.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from typing import Any

import lmdb

from events import codec, compaction, timeline
from events.append import Databases, Decide, append_batch
from events.environment import DATA, WAKE, WHAT_TO_DO, check_dir, inode, open_error, open_file
from events.errors import StoreError
from events.guard import DAMAGE, guarded, what
from events.keys import key_seq, seq_key
from events.types import Corrupt, Event
from events.views import Projection, Rows, count_skipped, skipped_from

__all__ = ["DATA", "WAKE", "Projection", "Rows", "Store", "StoreError", "count_skipped",
           "key_seq", "open_in_process", "seq_key"]

MAP_FLOOR = 1 << 30  # reserved address space; sparse on disk, ~4M events
MAX_GROW_RETRIES = 8

# Stores open in this process: a fork of it must not open them again (py-lmdb refuses a second
# open of an environment it believes is already open, and the fork inherited that belief).
_open_paths: set[str] = set()


def open_in_process() -> bool:
    return bool(_open_paths)


class Store:
    def __init__(self, path: str, env: lmdb.Environment, readonly: bool,
                 views: Sequence[Projection], map_floor: int = 0, inode: int = 0) -> None:
        self.path = path
        self.readonly = readonly
        self._pid = os.getpid()
        _open_paths.add(path)
        self._views = list(views)
        self._map_floor = map_floor
        self._wake_fd: int | None = None
        self._attach(env, inode)

    def _attach(self, env: lmdb.Environment, inode: int) -> None:  # data file `inode`'s env
        self._env = env
        self._inode = inode
        self._events = self._open_db(b"events")
        self._by_task = self._open_db(b"by_task")
        self._meta = self._open_db(b"meta")
        self._view_dbs = {v.name: self._open_db(b"view:" + v.name.encode()) for v in self._views}
        self._snaps = self._open_db(b"snaps")
        self._times = self._open_db(b"times")

    def damaged(self, exc: BaseException) -> StoreError:
        return StoreError(f"the event store in {self.path} is damaged: {what(exc)}; "
                          f"{WHAT_TO_DO}", "damaged")

    def _swapped(self) -> bool:  # `ghost compact` replaced the data file since we opened it
        return inode(os.path.join(self.path, DATA)) not in (0, self._inode)

    def _reopen(self) -> None:  # the data file that now sits at the path
        self._env.close()
        env, readonly, inode = open_file(self.path, self._map_floor)
        self.readonly = readonly
        self._attach(env, inode)

    def _open_db(self, name: bytes) -> Any:
        # open_db runs its own write transaction, so it meets the same map changes as a write.
        for _ in range(MAX_GROW_RETRIES):
            try:
                return self._env.open_db(name, create=not self.readonly)
            except lmdb.NotFoundError:
                return None  # read-only store that never had this database: it reads as empty
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)  # another process grew the map since we opened it
            except lmdb.MapFullError:
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
        raise StoreError(f"cannot open database {name.decode()} in {self.path}: the map keeps "
                         "changing size", "map_full")

    # -- opening -------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str, *, create: bool, views: Sequence[Projection] = (),
             map_floor: int = MAP_FLOOR, store_id: str = "") -> Store | None:
        """Open the store in directory `path`; None when it does not exist and not `create`."""
        exists = os.path.exists(os.path.join(path, DATA))
        if not exists and not create:
            return None
        check_dir(path, create)
        env, readonly, inode = open_file(path, map_floor)
        try:
            store = cls(path, env, readonly, views, map_floor, inode)
            if not readonly:
                env.reader_check()  # free slots of readers that were killed
                store._ensure_store_id(store_id)  # a new store: the given id, else random
        except (lmdb.Error, StoreError) as exc:
            env.close()
            _open_paths.discard(path)
            if isinstance(exc, StoreError):
                raise
            raise open_error(path, exc) from exc
        return store

    def close(self) -> None:
        if self._wake_fd is not None:
            os.close(self._wake_fd)
            self._wake_fd = None
        if os.getpid() == self._pid:
            self._env.close()
        _open_paths.discard(self.path)

    def _ensure_store_id(self, wanted: str) -> None:
        if self.meta("store_id") is None:
            self._write(lambda _: (), meta_defaults={"store_id": wanted or os.urandom(16).hex()})

    # -- reading -------------------------------------------------------------------------

    def _begin(self, write: bool = False) -> lmdb.Transaction:
        if os.getpid() != self._pid:
            raise StoreError("the event store was opened before fork(); open it again")
        for _ in range(MAX_GROW_RETRIES):
            if not write and self._swapped():
                self._reopen()
            try:
                txn = self._env.begin(write=write)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)  # another process grew the map: adopt its size
                continue
            if write and self._swapped():  # checked under the writer lock `compact` swaps under
                txn.abort()
                self._reopen()
                continue
            return txn
        raise StoreError("the event store map keeps changing size", "map_full")

    @guarded
    def meta(self, key: str) -> Any:
        if self._meta is None:
            return None
        with self._begin() as txn:
            raw = txn.get(key.encode(), db=self._meta)
        return None if raw is None else codec.unpack(raw)

    @property
    def store_id(self) -> str:
        return self.meta("store_id") or ""

    @guarded
    def last_seq(self) -> int:
        if self._events is None:
            return 0
        with self._begin() as txn:
            cur = txn.cursor(db=self._events)
            return key_seq(cur.key()) if cur.last() else 0

    @guarded
    def read(self, after: int = 0, limit: int | None = None) -> list[Event | Corrupt]:
        """Events with seq > `after`, in order (at most `limit`), from one snapshot."""
        out: list[Event | Corrupt] = []
        if self._events is None:
            return out
        # Decoding builds many small objects that are never cyclic: pausing the cyclic GC for
        # the batch saves ~1.2 us of ~5 us per event on a full replay (measured, bench/eventlog).
        paused = gc.isenabled()
        gc.disable()
        try:
            with self._begin() as txn:
                cur = txn.cursor(db=self._events)
                if not cur.set_range(seq_key(after + 1)):
                    return out
                for key, raw in cur:
                    out.append(codec.decode(key_seq(key), raw))
                    if limit is not None and len(out) >= limit:
                        break
        finally:
            if paused:
                gc.enable()
        return out

    @guarded
    def read_raw(self, after: int = 0, limit: int | None = None) -> list[tuple[int, bytes]]:
        """Like `read`, still encoded: (seq, bytes) pairs. For a consumer that
        decodes one event at a time (a fold, the export), so each event is still in the CPU
        cache when it is used: that alone made `ghost events` ~20% faster (bench/history.py)."""
        if self._events is None:
            return []
        with self._begin() as txn:
            cur = txn.cursor(db=self._events)
            if not cur.set_range(seq_key(after + 1)):
                return []
            if limit is None:
                return [(key_seq(key), raw) for key, raw in cur]
            return [(key_seq(key), raw) for key, raw in islice(cur, limit)]

    def scan(self, after: int = 0, chunk: int = 10_000) -> Iterator[Event | Corrupt]:
        """Every event after `after`, read in short transactions of `chunk` events.

        Each event is decoded only when it is asked for, so it is folded while still in cache
        and a chunk of decoded events is never held: a full fold of 1M events 7.4 -> 6.4 s."""
        decode = codec.decode
        while True:
            batch = self.read_raw(after, chunk)
            if not batch:
                return
            for seq, raw in batch:
                yield decode(seq, raw)
            after = batch[-1][0]

    @guarded
    def task_events(self, task: str) -> list[Event | Corrupt]:
        """All events of one task, through the per-task index."""
        prefix = task.encode() + b"\0"
        out: list[Event | Corrupt] = []
        if self._by_task is None or self._events is None:
            return out
        with self._begin() as txn:
            cur = txn.cursor(db=self._by_task)
            if not cur.set_range(prefix):
                return out
            for key in cur.iternext(values=False):
                if not key.startswith(prefix):
                    break
                seq = key_seq(key[len(prefix):])
                raw = txn.get(key[len(prefix):], db=self._events)
                if raw is not None:
                    out.append(codec.decode(seq, raw))
        return out

    @guarded
    def task_ids(self, prefix: str, limit: int = 50) -> list[str]:
        """Distinct task ids starting with `prefix` (from the per-task index), at most `limit`."""
        found: list[str] = []
        if self._by_task is None:
            return found
        want = prefix.encode()
        with self._begin() as txn:
            cur = txn.cursor(db=self._by_task)
            if not cur.set_range(want):
                return found
            while True:
                key = cur.key()
                if not key.startswith(want):
                    break
                task = key[:-9]
                found.append(task.decode())
                if len(found) >= limit or not cur.set_range(task + b"\1"):
                    break
        return found

    @guarded
    def view(self, name: str, version: int) -> tuple[dict[str, Any], int] | None:
        """A view's rows and the seq it has applied, or None when absent or of another version."""
        db = self._view_dbs.get(name)
        if db is None or self._meta is None:
            return None
        with self._begin() as txn:
            state = self._view_state(txn, name, version)
            if state is None:
                return None
            rows = {k.decode(): codec.unpack(v) for k, v in txn.cursor(db=db)}
        if any(row.__class__ is not dict for row in rows.values()):
            raise TypeError(f"a row of view {name} is not a map")
        return rows, int(state.get("applied", 0))

    def _view_state(self, txn: lmdb.Transaction, name: str, version: int) -> dict[str, Any] | None:
        """A view's checkpoint (applied seq, skipped counts) if it was built by `version`."""
        raw = txn.get(b"view:" + name.encode(), db=self._meta)
        state = None if raw is None else codec.unpack(raw)
        if not isinstance(state, dict) or state.get("version") != version:
            return None
        return state

    # -- writing -------------------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Event]:
        """Append a batch atomically; returns the events with their sequence numbers."""
        return self.transact(lambda _views: events)

    def transact(self, decide: Decide) -> list[Event]:
        """Run `decide` on the current views inside one write transaction, append its result.

        This is how conditional appends stay exact under concurrency: `decide` sees the views
        under the writer lock, so two processes cannot both record the same end of a task.
        """
        return self._write(decide)

    def _write(self, decide: Decide,
               meta_defaults: Mapping[str, Any] | None = None) -> list[Event]:
        self._writable()
        for _ in range(MAX_GROW_RETRIES):
            txn = self._begin(write=True)
            try:
                done = append_batch(txn, self._dbs(), self._views, decide, meta_defaults)
                txn.commit()
            except lmdb.MapFullError:
                txn.abort()
                self._env.set_mapsize(self._env.info()["map_size"] * 2)
                continue
            except lmdb.MapResizedError:
                txn.abort()
                self._env.set_mapsize(0)
                continue
            except DAMAGE as exc:
                txn.abort()
                raise StoreError(f"cannot write the event store in {self.path}: it holds "
                                 f"{what(exc)}; {WHAT_TO_DO}", "damaged") from exc
            except lmdb.ReadonlyError as exc:
                txn.abort()
                raise StoreError(f"the event store in {self.path} is read-only",
                                 "readonly") from exc
            except lmdb.Error as exc:
                txn.abort()
                raise compaction.write_error(self.path, exc) from exc
            except BaseException:
                txn.abort()
                raise
            if done:
                self._wake()
            return done
        raise StoreError(f"the event store in {self.path} is full and cannot grow", "map_full")

    def _writable(self) -> None:
        if self.readonly:
            raise StoreError(f"the event store in {self.path} is read-only", "readonly")

    def _dbs(self) -> Databases:
        return Databases(self._events, self._by_task, self._meta, self._view_dbs,
                         self._snaps, self._times)

    @guarded
    def snapshot(self, name: str, version: int,
                 at_ns: int) -> tuple[int, dict[str, Any]] | None:
        """(seq, rows) of the newest snapshot of a view whose events are all stamped <= at_ns."""
        if self._snaps is None or self._meta is None:
            return None
        with self._begin() as txn:
            return timeline.latest_snapshot(txn, self._snaps, self._meta, name, version, at_ns)

    @guarded
    def skippable_blocks(self, at_ns: int) -> set[int]:
        """Blocks of `timeline.TIME_BLOCK` seqs whose every event is stamped after `at_ns`."""
        if self._times is None or self._meta is None:
            return set()
        with self._begin() as txn:
            return timeline.skippable_blocks(txn, self._times, self._meta, at_ns)

    @guarded
    def view_skipped(self, name: str, version: int) -> dict[str, Any] | None:
        """How many events the stored view skipped (unknown, corrupt with their first seqs)."""
        if self._meta is None:
            return None
        with self._begin() as txn:
            state = self._view_state(txn, name, version)
        return None if state is None else skipped_from(state)

    def _wake(self) -> None:
        try:
            if self._wake_fd is None:
                self._wake_fd = os.open(
                    os.path.join(self.path, WAKE),
                    os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.pwrite(self._wake_fd, b"\1", 0)
        except OSError:
            pass  # followers still catch up on their one-second timeout

    def compact(self) -> tuple[int, int]:
        """Rewrite the data file without free pages (events.compaction): sizes before, after."""
        self._writable()
        txn = self._begin(write=True)  # every writer waits until the new file is in place
        try:
            sizes = compaction.compact(self._env, txn, self.path)
        except lmdb.Error as exc:
            raise compaction.write_error(self.path, exc) from exc
        finally:
            txn.abort()
        self._reopen()
        return sizes

    def stale_readers(self) -> int:
        return 0 if self.readonly else self._env.reader_check()

    def readers(self) -> str:
        return str(self._env.readers())
