"""What `ghost list` shows, kept cheap to read however long the history grows.

Where the time went (bench/lifecycle.py, 1,000 running + 10,000 finished tasks): every call
decoded every task's full view row (a msgpack map of ~35 fields, ~6 us) and built a Task from
it (~5 us), then rendered every row (~8 us) — 0.3 s, most of it for tasks that ended long ago
and will never change again. A task that exited or was killed changes only when it is cleaned
(or, rarely, restarted), so this module keeps those tasks as short rows of just what the table
shows, in a cache file in the data dir, next to the full records of the tasks still live.

The cache is a copy of the task view as of one sequence number, nothing more: a reader folds
the events after it with the projection's own `apply` (exactly as the store's readers fold what
a view has not applied yet), so it can never show something the event log does not say. Any
doubt — another store, another view version, an unreadable or foreign file, an event that
touches a short row other than forgetting it — means a rebuild from the store's view. Written
atomically (a private temporary file renamed over it, which replaces a planted symlink instead
of following it); a data dir that cannot take the write simply goes without.
"""

from __future__ import annotations

import gc
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from operator import attrgetter
from typing import Any, NamedTuple

import msgpack

from events import codec
from events.store import Store
from events.types import Corrupt, Event
from ghost.text import shell_line
from projections.checkpoint import VERSION, TaskView
from projections.tasks import Task, apply, rebuild

CACHE_VERSION = 4  # bump when Row or the file's layout changes
CACHE_NAME = "list-cache"  # in the store's directory: it belongs to that store, goes with it
FINAL = frozenset({"exited", "killed"})
MAX_FOLD = 20_000  # events to fold onto the cache before a rebuild from the view is cheaper
REWRITE_AFTER = 64  # folded events that make it worth writing the cache again


class Row(NamedTuple):
    """A finished task as the table shows it (and as `-s`, `--since`, `-n` select it)."""

    id: str
    pid: int
    status: str
    exit_code: int | None
    signal: str | None
    started_ns: int
    command: str  # the argv as one line, shell-quoted and escaped: all the table needs
    cwd: str
    spawned_seq: int
    last_seq: int
    name: str
    group: str
    gave_up: int | None  # restarts made when a restart policy gave up on it (issue 15)


ROW_FIELDS = len(Row._fields)


def short(task: Task) -> Row:
    return Row(task.id, task.pid, task.status, task.exit_code, task.signal, task.started_ns,
               shell_line(task.command), task.cwd, task.spawned_seq, task.last_seq, task.name,
               task.group, task.gave_up)


class Listing:
    """(A plain class, not a dataclass: `dataclasses` imports `inspect`, ~5 ms of a `list`.)"""

    __slots__ = ("finished", "live", "seq", "changed")

    def __init__(self, finished: dict[str, Row], live: dict[str, Task], seq: int,
                 changed: int) -> None:
        self.finished = finished  # exited or killed: final, shown as short rows
        self.live = live  # everything else, in full (running ones get reconciled)
        self.seq = seq  # the last event folded in
        self.changed = changed  # the last event that added or removed a finished row


def version(store: Store, listing: Listing) -> str:
    """Names the set of finished rows: equal versions, equal rows (what a cache of their
    rendered lines is keyed on)."""
    return f"{store.store_id}:{listing.changed}"


def load(store: Store) -> Listing:
    """Every task in the view as of now: from the cache plus the events after it, or rebuilt
    from the store's view (and cached) when there is no usable cache."""
    path = os.path.join(store.path, CACHE_NAME)
    store_id = store.store_id
    cached = _read(path, store_id)
    folded = 0
    if cached is not None:
        last = store.last_seq()
        if cached.seq <= last and last - cached.seq <= MAX_FOLD:
            folded = _fold(cached, store.scan(after=cached.seq))
            if folded >= 0:
                if folded >= REWRITE_AFTER:
                    _write(path, store_id, cached)
                return cached
    listing = _rebuild(store)
    _write(path, store_id, listing)
    return listing


def _rebuild(store: Store) -> Listing:
    seen = [0]
    stored = store.view(TaskView.name, VERSION)
    if stored is None:
        tasks = rebuild(_counting(store.scan(), seen))
    else:
        rows, seen[0] = stored
        try:
            tasks = {key: Task.from_row(row) for key, row in rows.items()}
        except (TypeError, AttributeError) as exc:  # as load_tasks: one error line
            raise store.damaged(exc) from exc
        for event in _counting(store.scan(after=seen[0]), seen):
            if isinstance(event, Event) and event.known:
                _put(tasks, event.task, apply(tasks.get(event.task), event))
    finished = {k: short(t) for k, t in tasks.items() if t.status in FINAL}
    live = {k: t for k, t in tasks.items() if k not in finished}
    return Listing(finished, live, seen[0], seen[0])


def _counting(events: Iterable[Event | Corrupt], seen: list[int]) -> Iterator[Event | Corrupt]:
    for event in events:
        seen[0] = event.seq
        yield event


def _put(tasks: dict[str, Task], key: str, task: Task | None) -> None:
    if task is None:
        tasks.pop(key, None)
    else:
        tasks[key] = task


def _fold(listing: Listing, events: Iterable[Event | Corrupt]) -> int:
    """Bring `listing` up to date in place; the number of events folded, or -1 when an event
    needs a short row's full record (the caller rebuilds)."""
    finished, live = listing.finished, listing.live
    count = 0
    for event in events:
        listing.seq = event.seq
        count += 1
        if not isinstance(event, Event) or not event.known:
            continue
        task_id = event.task
        row = finished.get(task_id)
        if row is not None:
            if event.seq <= row.last_seq:
                continue
            if _forgets(event):
                del finished[task_id]
                listing.changed = event.seq
                continue
            return -1  # e.g. a restart, or a late exact end: only the full record can say
        task = apply(live.get(task_id), event)
        if task is None:
            live.pop(task_id, None)
        elif task.status in FINAL:
            live.pop(task_id, None)
            finished[task_id] = short(task)
            listing.changed = event.seq
        else:
            live[task_id] = task
    return count


def _forgets(event: Event) -> bool:
    """Events after which the task is gone from the view whatever it was (cleaned, failed)."""
    from projections.checkpoint import FORGETTING

    return event.type in FORGETTING


def _read(path: str, store_id: str) -> Listing | None:
    with _gc_paused():
        return _decoded(_unpacked(path), store_id)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Decoding 100,000 rows allocates as many tuples, and every burst of allocations ran a
    cyclic-GC pass over all of them: ~40 % of the decoding. Nothing decoded forms a cycle."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decoded(data: Any, store_id: str) -> Listing | None:
    try:
        if data is None or (data[0], data[1], data[2]) != (CACHE_VERSION, store_id, VERSION):
            return None
        rows, tasks = data[4], data[5]
        if any(len(r) != ROW_FIELDS for r in rows) or any(len(t) != TASK_FIELDS for t in tasks):
            return None
        # Arrays come back as tuples (use_list=False) and become rows and Tasks through
        # tuple.__new__, in C: 11,000 rows in ~10 ms instead of ~50 through Row(...).
        finished = {r[0]: _new(Row, r) for r in rows}
        live = {t[0]: _task(t) for t in tasks}
        return Listing(finished, live, int(data[3]), int(data[6]))
    except (ValueError, TypeError, IndexError, KeyError):
        return None  # damaged or from another ghost: rebuilt from the store


def _unpacked(path: str) -> Any:
    """A cache file's content, or None: missing, planted (a symlink, not ours), damaged."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None  # none yet, or a symlink planted there: rebuilt and replaced
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return msgpack.unpackb(b"".join(chunks), raw=False, use_list=False,
                               unicode_errors="surrogateescape")
    except (ValueError, msgpack.UnpackException):
        return None


_new = tuple.__new__
TASK_FIELDS = len(Task._fields)
# Task fields msgpack gives back as tuples but that are mappings in a Task
_MAPPINGS = tuple(i for i, name in enumerate(Task._fields)
                  if isinstance(Task._field_defaults.get(name), Mapping))


def _task(values: tuple[Any, ...]) -> Task:
    fields = list(values)
    for i in _MAPPINGS:
        if not isinstance(fields[i], dict):
            raise TypeError(f"task field {Task._fields[i]} is not a map")
    return _new(Task, fields)


def _write(path: str, store_id: str, listing: Listing) -> None:
    _write_file(path, [CACHE_VERSION, store_id, VERSION, listing.seq,
                       # oldest first: `list` sorts them newest first, a reversal then
                       sorted(listing.finished.values(), key=attrgetter("spawned_seq")),
                       [list(t.to_row().values()) for t in listing.live.values()],
                       listing.changed])


def _write_file(path: str, data: Any) -> None:
    temp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError:
        return  # a read-only data dir (or a leftover of a crashed writer): go without
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(codec.pack(data))
        os.replace(temp, path)
    except OSError:
        _unlink(temp)  # a full disk: the cache is only a copy, the next list tries again


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


LINES_NAME = "list-lines"  # the finished rows as `ghost list` renders them (ghost.cli.listlines)


def read_lines(store: Store, key: str) -> Any:
    """What `save_lines` kept under `key`, or None (another key, none, damaged, planted)."""
    data = _unpacked(os.path.join(store.path, LINES_NAME))
    if not isinstance(data, tuple) or len(data) != 3 or data[:2] != (CACHE_VERSION, key):
        return None
    return data[2]


def save_lines(store: Store, key: str, value: Any) -> None:
    _write_file(os.path.join(store.path, LINES_NAME), [CACHE_VERSION, key, value])
