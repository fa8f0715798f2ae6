"""A stateful model of the event store: whatever is appended, read, reopened or followed, the log
is exactly the oracle list, with gap-free sequence numbers, and nothing is ever lost.

The store is real (LMDB in a temp dir, synced commits) and starts with a 64 KiB map so that
growth happens within a few steps.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any

import lmdb
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from events import codec
from events.follow import follow
from events.store import Store, StoreError, seq_key
from events.types import SCHEMAS, Corrupt, Event, make
from projections.checkpoint import VIEWS, TaskView, load_tasks
from projections.tasks import rebuild

TINY_MAP = 64 * 1024
# Ids chosen so that some are prefixes of others (task_ids / task_events must not mix them).
TASK_IDS = ["a", "ab", "abc", "b", "b0", "é", "7f3c9a0e-1"]
BAD_TASK_IDS = st.sampled_from(["", "a\0b", "\0", "x" * 401, "é" * 201])
PREFIXES = st.sampled_from(["", "a", "ab", "abcd", "b", "7", "é", "z"])

_SMALL_INT = st.integers(min_value=-(2**40), max_value=2**40)
_TEXT = st.text(max_size=12)
_BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    int: _SMALL_INT, str: _TEXT, float: st.floats(-1e6, 1e6), bool: st.booleans(),
    list: st.lists(_TEXT, min_size=1, max_size=3), dict: st.just({}), type(None): st.none(),
}
# Optional fields as ghost writes them (the projection reads inside these maps).
_OPTIONAL = {
    "monitor": st.fixed_dictionaries({"pid": st.integers(1, 2**22),
                                      "start_ticks": st.integers(0, 2**40)}),
    "actor": st.dictionaries(_TEXT, st.one_of(_TEXT, _SMALL_INT), max_size=2),
    "rusage": st.dictionaries(_TEXT, st.one_of(_SMALL_INT, st.floats(0, 1e6)), max_size=2),
    "env_keys": st.lists(_TEXT, max_size=3),
}


@st.composite
def known_events(draw: st.DrawFn, task: str) -> Event:
    event_type = draw(st.sampled_from(sorted(SCHEMAS)))
    _, required = SCHEMAS[event_type]
    fields = {name: draw(st.one_of(*(_BY_TYPE[t] for t in types if t in _BY_TYPE)))
              for name, types in required.items()}
    for name in draw(st.lists(st.sampled_from(sorted(_OPTIONAL)), max_size=2, unique=True)):
        fields[name] = draw(_OPTIONAL[name])
    return make(event_type, task, **fields)


@st.composite
def unknown_events(draw: st.DrawFn, task: str) -> Event:
    """From a newer ghost: a new type, or a known type at a future schema version."""
    if draw(st.booleans()):
        event_type, version = "future_" + draw(st.text(max_size=6)), draw(st.integers(0, 9))
    else:
        event_type = draw(st.sampled_from(sorted(SCHEMAS)))
        version = SCHEMAS[event_type][0] + draw(st.integers(1, 5))
    data = draw(st.dictionaries(_TEXT, st.one_of(_TEXT, _SMALL_INT, st.binary(max_size=8),
                                                 st.lists(_SMALL_INT, max_size=3)),
                                max_size=3))
    return Event(event_type, task, data, time.time_ns(), version, known=False)


@st.composite
def event_batches(draw: st.DrawFn, max_size: int = 6) -> list[Event]:
    out = []
    for _ in range(draw(st.integers(1, max_size))):
        task = draw(st.sampled_from(TASK_IDS))
        kind = known_events(task) if draw(st.integers(0, 3)) else unknown_events(task)
        out.append(draw(kind))
    return out


GARBAGE = st.one_of(
    st.just(b""),
    st.binary(max_size=20).map(lambda b: b"\xc1" + b),  # a reserved msgpack byte
    st.builds(lambda n: codec.encode(make("lost", "a", reason="x"))[:n], st.integers(1, 20)),
    st.binary(max_size=10).map(lambda b: codec.pack([1, 2]) + b),
)


class Boom(Exception):
    pass


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="ghost-store-machine-")
        self.path = os.path.join(self.root, "store")
        self.log: list[Event | Corrupt] = []  # the oracle: entry i has seq i + 1
        self.consumed: list[Event | Corrupt] = []  # what a resuming consumer has read so far
        self.store: Store | None = None
        self.store_id = ""

    @initialize()
    def create(self) -> None:
        assert Store.open(self.path, create=False) is None
        assert not os.path.exists(self.path)  # a missing store is not created by a read
        self.store = Store.open(self.path, create=True, views=VIEWS, map_floor=TINY_MAP)
        assert self.store is not None
        self.store_id = self.store.store_id
        assert len(self.store_id) == 32

    def teardown(self) -> None:
        if self.store is not None:
            self.store.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- writing --------------------------------------------------------------------------

    @rule(batch=event_batches())
    def append(self, batch: list[Event]) -> None:
        done = self.store.append(batch)
        first = len(self.log) + 1
        assert [e.seq for e in done] == list(range(first, first + len(batch)))
        assert done == [e.with_seq(seq) for seq, e in enumerate(batch, first)]
        self.log.extend(done)

    @rule(count=st.integers(20, 60), size=st.integers(200, 1200))
    def append_large_batch(self, count: int, size: int) -> None:
        """Enough bytes to outgrow the tiny map: the store must grow it and lose nothing."""
        batch = [Event("future_blob", TASK_IDS[i % 3], {"blob": bytes([i % 256]) * size, "i": i},
                       time.time_ns(), 1, known=False) for i in range(count)]
        self.log.extend(self.store.append(batch))

    @rule(batch=event_batches(), bad_id=BAD_TASK_IDS,
          failure=st.sampled_from(["raise", "unencodable", "bad task id", "malformed"]))
    def failed_transaction_changes_nothing(self, batch: list[Event], bad_id: str,
                                           failure: str) -> None:
        before = self.store.last_seq()
        if failure == "raise":
            def decide(_views: Any) -> list[Event]:
                raise Boom

            with pytest.raises(Boom):
                self.store.transact(decide)
        elif failure == "unencodable":
            too_big = Event("future_x", "a", {"n": 2**70}, 1, 1, known=False)
            with pytest.raises(OverflowError):
                self.store.append([*batch, too_big])
        else:
            # Refused rather than written: the index (or readers) could not take it back.
            bad = (make("lost", bad_id, reason="x") if failure == "bad task id"
                   else Event("exited", "a", {"code": "0", "end_ns": 1}, 1, 1))
            with pytest.raises(StoreError) as info:
                self.store.append([*batch, bad])
            assert info.value.kind == "invalid"
        assert self.store.last_seq() == before

    @rule(garbage=GARBAGE)
    def corrupt_value_under_the_next_key(self, garbage: bytes) -> None:
        """Bytes that are not an event, put under a valid key by something other than ghost."""
        self.store.close()
        env = lmdb.open(self.path, subdir=True, max_dbs=8, map_size=0)
        try:
            env.set_mapsize(env.info()["map_size"] + TINY_MAP)  # this writer does not grow it
            with env.begin(write=True) as txn:
                seq = len(self.log) + 1
                assert txn.put(seq_key(seq), garbage, db=env.open_db(b"events", txn=txn),
                               append=True)
        finally:
            env.close()
        self.log.append(Corrupt(seq, "", garbage))
        self.reopen()

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.path, create=False, views=VIEWS, map_floor=TINY_MAP)
        assert self.store is not None
        assert self.store.store_id == self.store_id

    # -- reading --------------------------------------------------------------------------

    @rule(data=st.data())
    def read_from_any_position(self, data: st.DataObject) -> None:
        after = data.draw(st.integers(0, len(self.log) + 2), label="after")
        limit = data.draw(st.none() | st.integers(1, 5), label="limit")
        got = self.store.read(after, limit)
        want = self.log[after:] if limit is None else self.log[after:after + limit]
        assert_same(got, want)

    @rule(data=st.data())
    def scan_in_small_chunks(self, data: st.DataObject) -> None:
        after = data.draw(st.integers(0, len(self.log) + 1), label="after")
        chunk = data.draw(st.integers(1, 4), label="chunk")
        assert_same(list(self.store.scan(after, chunk)), self.log[after:])

    @rule(limit=st.integers(1, 4))
    def resume_consumer(self, limit: int) -> None:
        """A consumer that remembers its position, across reopens, reads on exactly."""
        got = self.store.read(self.consumed[-1].seq if self.consumed else 0, limit)
        want = self.log[len(self.consumed):len(self.consumed) + limit]
        assert_same(got, want)
        self.consumed.extend(got)

    @rule(data=st.data())
    def follow_first_batch(self, data: st.DataObject) -> None:
        after = data.draw(st.integers(0, len(self.log)), label="after")
        batches = follow(self.store, after)
        try:
            assert_same(next(batches), self.log[after:])
        finally:
            batches.close()

    @rule(task=st.sampled_from(TASK_IDS))
    def task_events(self, task: str) -> None:
        want = [e for e in self.log if isinstance(e, Event) and e.task == task]
        assert_same(self.store.task_events(task), want)

    @rule(prefix=PREFIXES, limit=st.integers(1, 10))
    def task_ids(self, prefix: str, limit: int) -> None:
        present = {e.task for e in self.log if isinstance(e, Event)}
        want = sorted((t for t in present if t.startswith(prefix)), key=str.encode)[:limit]
        assert self.store.task_ids(prefix, limit) == want

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def log_is_exactly_the_oracle(self) -> None:
        if self.store is None:
            return
        assert self.store.last_seq() == len(self.log)
        got = self.store.read()
        assert [e.seq for e in got] == list(range(1, len(self.log) + 1))  # gap-free from 1
        assert_same(got, self.log)
        assert_same(self.consumed, self.log[:len(self.consumed)])

    @invariant()
    def task_view_equals_a_rebuild(self) -> None:
        if self.store is None:
            return
        rebuilt = rebuild(self.log)
        assert load_tasks(self.store) == rebuilt
        stored = self.store.view(TaskView.name, TaskView.version)
        assert stored is not None
        rows, applied = stored
        assert applied <= len(self.log)
        assert rows == {k: t.to_row() for k, t in rebuild(self.log[:applied]).items()}


def assert_same(got: list[Event | Corrupt], want: list[Event | Corrupt]) -> None:
    """Events equal field for field (type, task, data, time, version, seq, known); corrupt
    entries by seq and raw bytes (the reason text is the codec's business)."""
    assert len(got) == len(want), (len(got), len(want))
    for g, w in zip(got, want, strict=True):
        if isinstance(w, Corrupt):
            assert isinstance(g, Corrupt) and (g.seq, g.raw) == (w.seq, w.raw), (g, w)
        else:
            assert g == w, (g, w)


TestStoreMachine = StoreMachine.TestCase
