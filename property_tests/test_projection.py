"""The task view is one pure fold, however it is computed.

For random event sequences over a few task ids (every known type, unknown types, events from a
newer ghost, corrupt entries, wall-clock times in any order, duplicate endings), the view the
store maintains incrementally, appended in random batch sizes, must equal
  - a full rebuild over the log (`projections.tasks.rebuild`),
  - the view the store rebuilds itself after its checkpoint is deleted,
  - the view rebuilt after the projection's code version changes,
  - and the same log appended in other batch sizes to another store (replay is deterministic).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import Phase, find, given, settings
from hypothesis import strategies as st

from events import types as ev
from events.store import Store, seq_key
from events.types import Event
from projections import checkpoint
from projections.checkpoint import VIEWS, TaskView, load_tasks
from projections.tasks import Task, rebuild

MAP = 1 << 24
TASKS = st.sampled_from(["t-1", "t-2", "t-3"])
TEXT = st.text(max_size=8)
INT = st.integers(min_value=-(2**40), max_value=2**40)
TIME = st.integers(min_value=0, max_value=2**62)  # wall clock: any order, even backwards
SIGNALS = st.sampled_from(["SIGTERM", "SIGKILL", "SIGINT", "SIG77"])
ACTOR = st.fixed_dictionaries({"via": st.sampled_from(["cli", "mcp", "monitor"]),
                               "user": TEXT, "pid": st.integers(1, 2**22)})
RUSAGE = st.fixed_dictionaries({"utime": st.floats(0, 1e4), "stime": st.floats(0, 1e4),
                                "maxrss_kb": st.integers(0, 2**30)})

FIELDS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    ev.SPAWNED: st.fixed_dictionaries(
        {"command": st.lists(TEXT, min_size=1, max_size=3), "cwd": TEXT, "pid": INT,
         "pgid": INT, "start_ticks": INT, "boot_id": TEXT, "log_path": TEXT},
        optional={"env_keys": st.lists(TEXT, max_size=2), "actor": ACTOR,
                  "monitor": st.fixed_dictionaries({"pid": st.integers(1, 2**22),
                                                    "start_ticks": INT})}),
    ev.SPAWN_FAILED: st.fixed_dictionaries(
        {"command": st.lists(TEXT, max_size=2), "cwd": TEXT, "error": TEXT,
         "exit_code": st.sampled_from([1, 2, 126, 127])}),
    ev.STOP_REQUESTED: st.fixed_dictionaries(
        {"signal": SIGNALS, "timeout": st.floats(0, 1e3), "force": st.booleans()},
        optional={"escalated": st.booleans(), "actor": ACTOR}),
    ev.EXITED: st.fixed_dictionaries({"code": st.integers(-255, 255), "end_ns": TIME},
                                     optional={"rusage": RUSAGE}),
    ev.KILLED: st.fixed_dictionaries({"signal": SIGNALS, "signum": st.integers(1, 64),
                                      "end_ns": TIME}, optional={"rusage": RUSAGE}),
    ev.LOST: st.fixed_dictionaries({"reason": TEXT}),
    ev.CLEANED: st.fixed_dictionaries({"log_removed": st.booleans()}),
}


@st.composite
def known_event(draw: st.DrawFn, kind: str | None = None, task: str | None = None) -> Event:
    kind = kind or draw(st.sampled_from(sorted(FIELDS)))
    return Event(kind, task or draw(TASKS), draw(FIELDS[kind]), draw(TIME),
                 ev.current_version(kind))


@st.composite
def opaque_event(draw: st.DrawFn) -> Event:
    """Written by a newer ghost: an unknown type, or a known type at a newer version."""
    if draw(st.booleans()):
        return Event("paused", draw(TASKS), {"why": draw(TEXT)}, draw(TIME), 1)
    kind = draw(st.sampled_from([ev.EXITED, ev.KILLED, ev.CLEANED, ev.SPAWNED]))
    return Event(kind, draw(TASKS), draw(FIELDS[kind]), draw(TIME), ev.current_version(kind) + 1)


# A raw value under the next key that no reader can decode (torn write, foreign tool).
CORRUPT = st.sampled_from([b"\xc1", b"\x93\x01\x02\x03", b"\x81\xa1t\xa6exited", b""])


@st.composite
def story(draw: st.DrawFn, task: str) -> list[Event | bytes]:
    """One task's life: a start, then any later events (duplicate and conflicting endings too)."""
    later = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=5))
    return [draw(known_event(kind, task)) for kind in [ev.SPAWNED, *later]]


@st.composite
def entries(draw: st.DrawFn) -> list[Event | bytes]:
    """A few task stories interleaved at random, with noise: stray, opaque and corrupt entries."""
    tasks = draw(st.lists(TASKS, unique=True, max_size=3))
    queues = [draw(story(task)) for task in tasks]
    queues.append(draw(st.lists(st.one_of(known_event(), opaque_event(), CORRUPT), max_size=6)))
    merged: list[Event | bytes] = []
    while live := [q for q in queues if q]:
        merged.append(live[draw(st.integers(0, len(live) - 1))].pop(0))
    return merged


def batches(draw: st.DrawFn, count: int) -> list[int]:
    """Random batch sizes that add up to `count`."""
    sizes = []
    while count > 0:
        size = draw(st.integers(1, min(count, 8)))
        sizes.append(size)
        count -= size
    return sizes


@contextlib.contextmanager
def fresh_store() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(os.path.join(tmp, "store"), create=True, views=VIEWS, map_floor=MAP)
        assert store is not None
        try:
            yield store
        finally:
            store.close()


def put_raw(store: Store, raw: bytes) -> None:
    """Write undecodable bytes as the next log entry, as a torn or foreign writer would."""
    env = store._env  # noqa: SLF001 - the public API cannot write corrupt values, by design
    with env.begin(write=True) as txn:
        events = env.open_db(b"events", txn=txn)
        cur = txn.cursor(db=events)
        last = int.from_bytes(cur.key(), "big") if cur.last() else 0
        assert txn.put(seq_key(last + 1), raw, db=events, append=True)


def fill(store: Store, log: Sequence[Event | bytes], sizes: Sequence[int]) -> None:
    """Append `log` in batches of `sizes`; a corrupt entry ends the batch it falls in."""
    pos = 0
    for size in sizes:
        pending: list[Event] = []
        for entry in log[pos:pos + size]:
            if isinstance(entry, bytes):
                if pending:
                    store.append(pending)
                    pending = []
                put_raw(store, entry)
            else:
                pending.append(entry)
        if pending:
            store.append(pending)
        pos += size


def stored_view(store: Store) -> dict[str, Task] | None:
    """The rows the store keeps for the view of the current code version, if any."""
    found = store.view(TaskView.name, checkpoint.VERSION)
    if found is None:
        return None
    rows, applied = found
    assert applied == store.last_seq()
    return {key: Task.from_row(row) for key, row in rows.items()}


def touch(store: Store) -> None:
    """A write transaction that appends nothing: the store brings its views up to date."""
    assert store.transact(lambda _views: ()) == []


def drop_checkpoint(store: Store) -> None:
    env = store._env  # noqa: SLF001 - simulating a view lost to an old or crashed writer
    with env.begin(write=True) as txn:
        assert txn.delete(b"view:tasks", db=env.open_db(b"meta", txn=txn))


@st.composite
def scenario(draw: st.DrawFn) -> tuple[list[Event | bytes], list[int], list[int]]:
    log = draw(entries())
    return log, batches(draw, len(log)), batches(draw, len(log))


@given(scenario())
def test_incremental_view_equals_every_rebuild(case):
    log, sizes, other_sizes = case
    with fresh_store() as store:
        fill(store, log, sizes)
        full = rebuild(store.scan())
        assert rebuild(store.scan()) == full  # deterministic
        assert load_tasks(store) == full
        touch(store)
        assert stored_view(store) == full  # the rows the store keeps, caught up

        drop_checkpoint(store)
        assert stored_view(store) is None
        assert load_tasks(store) == full  # readers fold the whole log meanwhile
        touch(store)
        assert stored_view(store) == full  # the store rebuilt the view itself

        with fresh_store() as other:
            fill(other, log, other_sizes)
            assert load_tasks(other) == full
            assert [e for e in other.scan()] == [e for e in store.scan()]


@given(entries())
def test_new_projection_version_rebuilds_identically(log):
    with fresh_store() as store:
        fill(store, log, [len(log)] if log else [])
        touch(store)
        before = stored_view(store)
        assert before == rebuild(store.scan())
        path = store.path
        store.close()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(checkpoint, "VERSION", checkpoint.VERSION + 1)
            patch.setattr(TaskView, "version", checkpoint.VERSION)
            reopened = Store.open(path, create=False, views=VIEWS, map_floor=MAP)
            assert reopened is not None
            try:
                assert stored_view(reopened) is None  # rows of the old code are not trusted
                assert load_tasks(reopened) == before
                touch(reopened)
                assert stored_view(reopened) == before
            finally:
                reopened.close()


@pytest.mark.parametrize("status", ["running", "exited", "killed", "unknown", "stopped"])
def test_the_generators_reach_every_state(status):
    """Guard against a vacuous property: the strategies do produce tasks in every state."""

    def reaches(log: list[Event | bytes]) -> bool:
        tasks = rebuild(e for e in log if isinstance(e, Event) and e.v == 1)
        return any(t.status == status or (status == "stopped" and t.stop)
                   for t in tasks.values())

    # Generation only: finding one example is the point, shrinking it would cost minutes.
    find(entries(), reaches,
         settings=settings(max_examples=2000, database=None, phases=[Phase.generate]))


def test_rows_read_back_as_the_same_task_whatever_else_they_hold():
    task = Task("t", ("sleep", "1"), "/", 5, 5, 9, "boot", "/l", 100, exit_code=3,
                env_keys=("A",), stop={"signal": "SIGTERM"}, last_seq=7)
    row = task.to_row()
    assert Task.from_row(row) == task
    assert Task.from_row({**row, "added_by_a_newer_ghost": 1}) == task
    assert Task.from_row({k: v for k, v in row.items() if k not in ("command", "env_keys")}) \
        == task._replace(command=(), env_keys=())
    with pytest.raises(TypeError, match="without pid"):
        Task.from_row({k: v for k, v in row.items() if k != "pid"})
