"""The event store against the faults of a real machine: permissions, read-only and full file
systems, maps grown by others, killed readers, corrupt bytes, fork, and planted symlinks."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import lmdb
import pytest

from events.store import Store, StoreError, seq_key
from events.types import Corrupt, Event, make

SMALL_MAP = 64 * 1024


def lost(task: str, reason: str = "test") -> Event:
    return make("lost", task, reason=reason)


def python(code: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], **kwargs)


def run_python(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def path(tmp_path) -> str:
    return str(tmp_path / "data" / "store")


@pytest.fixture
def store(path) -> Iterator[Store]:
    opened = Store.open(path, create=True)
    assert opened is not None
    yield opened
    opened.close()


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- missing and new stores ------------------------------------------------------------------

def test_a_missing_store_reads_as_none_and_nothing_is_created(tmp_path, path):
    assert Store.open(path, create=False) is None
    assert os.listdir(tmp_path) == []


def test_a_new_store_is_private_whatever_the_umask(path):
    run_python("""
        import os, sys
        from events.store import Store
        from events.types import make
        os.umask(0)
        store = Store.open(sys.argv[1], create=True)
        store.append([make("lost", "t1", reason="x")])
        store.close()
        """, path)
    assert mode(path) == 0o700
    assert mode(os.path.dirname(path)) == 0o700
    assert sorted(os.listdir(path)) == ["data.mdb", "lock.mdb", "wake"]
    for name in ("data.mdb", "lock.mdb", "wake"):
        assert mode(os.path.join(path, name)) == 0o600, name


def test_an_empty_store_reads_empty_and_keeps_its_id(path, store):
    assert (store.last_seq(), store.read(), store.task_events("x"), store.task_ids("")) \
        == (0, [], [], [])
    store_id = store.store_id
    assert len(store_id) == 32
    store.close()
    again = Store.open(path, create=False)
    assert again is not None and again.store_id == store_id
    again.close()


# -- read-only file system --------------------------------------------------------------------

@contextlib.contextmanager
def tmpfs(where: str, options: str) -> Iterator[str]:
    os.makedirs(where)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", where],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); needs root")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", where], check=True)


def test_a_store_on_a_read_only_file_system_reads_and_refuses_writes(tmp_path):
    with tmpfs(str(tmp_path / "mnt"), "size=8m,mode=0700") as mnt:
        path = os.path.join(mnt, "store")
        store = Store.open(path, create=True)
        done = store.append([lost("t1"), lost("t2"), lost("t1", "again")])
        store.close()
        subprocess.run(["mount", "-o", "remount,ro", mnt], check=True)

        store = Store.open(path, create=False)
        try:
            assert store.readonly
            assert store.read() == done
            assert store.last_seq() == 3
            assert [e.seq for e in store.task_events("t1")] == [1, 3]
            assert store.task_ids("t") == ["t1", "t2"]
            with pytest.raises(StoreError) as info:
                store.append([lost("t3")])
            assert info.value.kind == "readonly"
            assert "read-only" in str(info.value)
        finally:
            store.close()
        # A store that does not exist on a read-only file system is simply empty.
        assert Store.open(os.path.join(mnt, "other"), create=False) is None


def test_a_full_disk_fails_the_write_cleanly_and_keeps_what_was_committed(tmp_path):
    with tmpfs(str(tmp_path / "mnt"), "size=512k") as mnt:
        path = os.path.join(mnt, "store")
        store = Store.open(path, create=True, map_floor=SMALL_MAP)
        committed = []
        try:
            with pytest.raises(StoreError) as info:
                for i in range(100_000):
                    committed += store.append([lost(f"t{i}", "x" * 400)])
            assert info.value.kind == "disk_full", info.value
            assert store.read() == committed
        finally:
            store.close()
        store = Store.open(path, create=False)
        try:
            assert store.read() == committed and len(committed) > 100
        finally:
            store.close()


# -- other processes ---------------------------------------------------------------------------

APPEND_MANY = """
    import sys
    from events.store import Store
    from events.types import make
    store = Store.open(sys.argv[1], create=False, map_floor=64 * 1024)
    n = int(sys.argv[2])
    for start in range(0, n, 100):
        store.append([make("lost", f"b{i}", reason="y" * 200) for i in range(start, start + 100)])
    store.close()
"""


def test_a_map_grown_by_another_process_is_adopted_transparently(path):
    store = Store.open(path, create=True, map_floor=SMALL_MAP)
    try:
        first = store.append([lost("a1")])
        small = store._env.info()["map_size"]
        run_python(APPEND_MANY, path, "3000")  # ~700 KB: the other process grows the map
        assert store.last_seq() == 3001
        more = store.append([lost("a2")])
        assert more[0].seq == 3002
        events = store.read()
        assert [e.seq for e in events] == list(range(1, 3003))
        assert events[0] == first[0] and events[-1] == more[0]
        assert store._env.info()["map_size"] > small
    finally:
        store.close()


def test_opening_while_another_process_grows_the_map_does_not_fail(path):
    """Regression: the map could grow between mapping the file and opening the databases
    (open_db runs a write transaction); a monitor then died recording its task's end."""
    from events import environment
    from projections.checkpoint import VIEWS

    Store.open(path, create=True, map_floor=SMALL_MAP).close()
    env, readonly = environment.open_env(path, SMALL_MAP)  # mapped at the small size
    run_python(APPEND_MANY, path, "3000")  # another process grows the map meanwhile
    store = Store(path, env, readonly, VIEWS)  # opens its databases after the growth
    try:
        assert store.append([lost("after")])[0].seq == 3001
        assert len(store.read()) == 3001
    finally:
        store.close()


HOLD_A_READ = """
    import sys, time
    from events.store import Store
    store = Store.open(sys.argv[1], create=False)
    if sys.argv[2] == "read":
        txn = store._env.begin()  # a snapshot held open, like a follower paused mid-read
        txn.get(b"x")
    print("ready", flush=True)
    time.sleep(60)
"""


def test_the_reader_slot_of_a_killed_reader_is_cleared_on_open(path, store):
    store.append([lost("t1")])
    store.close()
    # Another process keeps the store open, so LMDB does not reset the reader table for us.
    keeper = python(HOLD_A_READ, path, "keep", stdout=subprocess.PIPE, text=True)
    reader = python(HOLD_A_READ, path, "read", stdout=subprocess.PIPE, text=True)
    try:
        assert keeper.stdout.readline() == "ready\n"
        assert reader.stdout.readline() == "ready\n"
        reader.kill()
        reader.wait(10)
        env = lmdb.open(path, subdir=True, max_dbs=8, map_size=0, readonly=True)
        try:
            pids = [line.split()[0] for line in env.readers().splitlines()[1:]]
            assert str(reader.pid) in pids  # the dead reader still holds its slot
        finally:
            env.close()
        again = Store.open(path, create=False)
        try:
            pids = [line.split()[0] for line in again.readers().splitlines()[1:]]
            assert str(reader.pid) not in pids
            assert again.stale_readers() == 0
        finally:
            again.close()
    finally:
        for process in (reader, keeper):
            process.kill()
            process.wait(10)


# -- corrupt values ----------------------------------------------------------------------------

def put_raw(path: str, seq: int, value: bytes) -> None:
    """Write bytes under an event key, bypassing the store (as a disk error or a bug might)."""
    env = lmdb.open(path, subdir=True, max_dbs=8, map_size=0)
    try:
        with env.begin(write=True) as txn:
            txn.put(seq_key(seq), value, db=env.open_db(b"events", txn=txn))
    finally:
        env.close()


def test_corrupt_values_are_reported_by_seq_and_reading_goes_on(path, store):
    before = store.append([lost("t1"), lost("t2"), lost("t1", "2")])
    store.close()
    put_raw(path, 2, b"\xc1garbage")  # overwrite a value in the middle
    put_raw(path, 4, b"\x93\x01")     # and append a truncated one at the end
    store = Store.open(path, create=False)
    try:
        after = store.append([lost("t2", "3")])
        assert after[0].seq == 5  # the corrupt entry still holds its sequence number
        events = store.read()
        assert [e.seq for e in events] == [1, 2, 3, 4, 5]
        assert events[0] == before[0] and events[2] == before[2] and events[4] == after[0]
        assert isinstance(events[1], Corrupt) and events[1].raw == b"\xc1garbage"
        assert isinstance(events[3], Corrupt) and events[3].raw == b"\x93\x01"
        assert list(store.scan(chunk=2)) == events
        # The task index still points at seq 2: the reader learns it is corrupt, not missing.
        t2 = store.task_events("t2")
        assert [e.seq for e in t2] == [2, 5] and isinstance(t2[0], Corrupt)
    finally:
        store.close()


# -- fork ----------------------------------------------------------------------------------------

def test_a_store_opened_before_fork_refuses_to_work_in_the_child(store):
    store.append([lost("t1")])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report what each call did, then leave without any cleanup
        outcomes = []
        for call in (store.read, store.last_seq, lambda: store.append([lost("t2")])):
            try:
                call()
                outcomes.append("worked")
            except StoreError:
                outcomes.append("refused")
            except BaseException as exc:  # noqa: BLE001 - report anything to the parent
                outcomes.append(type(exc).__name__)
        os.write(w, ",".join(outcomes).encode())
        os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as pipe:
            report = pipe.read().decode()
    finally:
        os.waitpid(pid, 0)
    assert report == "refused,refused,refused"
    assert store.last_seq() == 1  # the parent's store is unharmed


# -- planted symlinks ----------------------------------------------------------------------------

def test_a_symlink_in_place_of_the_store_dir_is_refused(tmp_path, path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.makedirs(os.path.dirname(path))
    os.symlink(elsewhere, path)
    with pytest.raises(StoreError) as info:
        Store.open(path, create=True)
    assert info.value.kind == "unsafe"
    assert os.listdir(elsewhere) == []  # nothing written through the link
    (elsewhere / "data.mdb").write_bytes(b"")  # now it even looks like a store
    with pytest.raises(StoreError) as info:
        Store.open(path, create=False)
    assert info.value.kind == "unsafe"
    assert os.listdir(elsewhere) == ["data.mdb"]


@pytest.mark.parametrize("name", ["data.mdb", "lock.mdb", "wake"])
def test_a_symlink_planted_among_the_store_files_is_refused(tmp_path, path, store, name):
    store.append([lost("t1")])
    store.close()
    target = tmp_path / f"target-{name}"
    target.write_bytes(b"precious")
    os.replace(os.path.join(path, name), tmp_path / "moved")
    os.symlink(target, os.path.join(path, name))
    with pytest.raises(StoreError) as info:
        Store.open(path, create=False)
    assert info.value.kind == "unsafe" and name in str(info.value)
    assert target.read_bytes() == b"precious"


def test_a_file_in_place_of_the_store_dir_is_refused(path):
    os.makedirs(os.path.dirname(path))
    with open(path, "w") as f:
        f.write("not a store")
    with pytest.raises(StoreError) as info:
        Store.open(path, create=True)
    assert info.value.kind == "unsafe"


# -- appends that must not happen ------------------------------------------------------------------

@pytest.mark.parametrize("task", ["", "a\0b", "x" * 401])
def test_task_ids_the_index_cannot_hold_are_refused_whole_batch(store, task):
    store.append([lost("ok")])
    with pytest.raises(StoreError) as info:
        store.append([lost("fine"), lost(task)])
    assert info.value.kind == "invalid"
    assert store.last_seq() == 1 and store.task_ids("fine") == []


def test_an_event_readers_would_call_corrupt_is_refused(store):
    with pytest.raises(StoreError) as info:
        store.append([Event("exited", "t1", {"code": "zero", "end_ns": 1}, 1, 1)])
    assert info.value.kind == "invalid" and "'code'" in str(info.value)
    assert store.last_seq() == 0


def test_events_from_a_newer_ghost_are_stored_and_read_back_opaque(store):
    newer = Event("paused", "t1", {"why": "user"}, 5, 3, known=False)
    future_exit = Event("exited", "t1", {"code": "now a string"}, 6, 9, known=False)
    done = store.append([lost("t1"), newer, future_exit])
    assert store.read() == done
    assert [e.known for e in store.task_events("t1")] == [True, False, False]

