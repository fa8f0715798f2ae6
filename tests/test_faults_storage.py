"""Storage faults: a full map, a full disk, a read-only or network data dir, dead readers and
writers, and a log holding values this ghost cannot decode — plus `ghost doctor`, which finds
every one of them. Mount-based cases need root (or are skipped with the reason)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import lmdb
import pytest
from support import ghost, run_json, status_json, text, wait_ended, wait_for
from test_faults_crash import all_events, check_invariants, list_json, open_store

from events import codec
from events.store import seq_key
from events.types import CLEANED, Event, make
from projections.checkpoint import VERSION, load_tasks

SMALL_MAP = "65536"


def one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    out, err = text(result)
    assert result.returncode == code, (out, err)
    assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def run_many(env: dict[str, str], count: int) -> None:
    """Start `count` short tasks, ten per `ghost run`, and wait until every one has ended."""
    for _ in range(count // 10):
        result = ghost("run", *["sh -c true"] * 10, env=env)
        assert result.returncode == 0, text(result)
    wait_for(lambda: all(t["status"] == "exited" for t in list_json(env)), timeout=60,
             message="every task to end")


# -- map full, map grown by another process ------------------------------------------------


def test_full_map_grows_and_keeps_every_event(data_dir, env):
    small = {**env, "GHOST_TEST_MAP_SIZE": SMALL_MAP}
    run_many(small, 60)  # ~120 events plus view rows: far beyond 64 KiB
    assert os.path.getsize(os.path.join(data_dir, "store", "data.mdb")) > int(SMALL_MAP)
    assert len(list_json(small)) == 60
    assert check_invariants(data_dir) == []
    assert ghost("doctor", env=small).returncode == 0


def test_reader_whose_map_another_process_grew_recovers(data_dir, env):
    small = {**env, "GHOST_TEST_MAP_SIZE": SMALL_MAP}
    run_many(small, 10)
    from events.store import Store
    from projections.checkpoint import VIEWS

    store = Store.open(os.path.join(data_dir, "store"), create=False, views=VIEWS,
                       map_floor=int(SMALL_MAP))
    assert store is not None
    try:
        before = len(load_tasks(store))
        run_many(small, 50)  # another process grows the map under our open environment
        assert len(load_tasks(store)) == before + 50
        done = store.append([make(CLEANED, "not-a-task", log_removed=False)])
        assert done[0].seq == store.last_seq()
    finally:
        store.close()


# -- disk full -----------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: str, options: str) -> Iterator[None]:
    os.makedirs(path, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", path], check=True)


def fill(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass  # ENOSPC: the file system is full
    finally:
        os.close(fd)


def test_disk_full_fails_with_one_line_and_loses_nothing(data_dir, env, tmp_path):
    gate = tmp_path / "gate"
    gate.touch()
    try:
        _disk_full_fails_with_one_line(data_dir, env, gate)
    finally:
        gate.unlink(missing_ok=True)  # a failed assertion must not leave the gated task behind


def _disk_full_fails_with_one_line(data_dir, env, gate) -> None:
    with tmpfs(data_dir, "size=1m,mode=0700"):
        done = run_json("true", env=env)
        wait_ended(done["id"], env)
        waiting = run_json("sh", "-c", f"while [ -e {gate} ]; do sleep 0.02; done", env=env)
        fill(os.path.join(data_dir, "filler"))

        # Large events need fresh pages, so these commits cannot fit in freed ones.
        big = "x" * 100_000
        one_error_line(ghost("run", "echo", big, env=env), 74, "No space left on device")
        one_error_line(ghost("run", "no-such-command", *[big[:1000]] * 200, env=env), 74,
                       "No space left on device")  # the CLI's own write of `spawn_failed`
        assert list_json(env)[-1]["id"] == done["id"]  # reads still work on a full disk

        gate.unlink()  # the task ends while its end cannot be written: its monitor retries
        wait_for(lambda: not os.path.exists(f"/proc/{waiting['pid']}/cmdline"),
                 message="the task to end")
        os.unlink(os.path.join(data_dir, "filler"))
        assert wait_ended(waiting["id"], env, timeout=30)["exit_code"] == 0
        assert [t["status"] for t in list_json(env)] == ["exited", "exited"]
        assert sorted(os.listdir(os.path.join(data_dir, "logs"))) == sorted(
            [f"{done['id']}.log", f"{waiting['id']}.log"])  # the refused task left no log
        assert check_invariants(data_dir) == []
        assert ghost("doctor", env=env).returncode == 0


# -- read-only and network data dirs, missing data dir --------------------------------------


def test_read_only_data_dir_reads_work_and_writes_fail_with_one_line(data_dir, env):
    done = run_json("sh", "-c", "echo hello", env=env)
    wait_ended(done["id"], env)
    bind = subprocess.run(["mount", "--bind", data_dir, data_dir], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", data_dir], check=True)
        assert [t["id"] for t in list_json(env)] == [done["id"]]
        assert status_json(done["id"], env)["exit_code"] == 0
        assert ghost("log", done["id"], env=env).stdout == b"hello\n"
        assert ghost("doctor", env=env).returncode == 0
        one_error_line(ghost("run", "true", env=env), 1, "read-only")
        one_error_line(ghost("cleanup", "--all", env=env), 1, "read-only")
        one_error_line(ghost("stop", done["id"], env=env), 1, "read-only")
    finally:
        subprocess.run(["umount", "-l", data_dir], check=True)
    assert check_invariants(data_dir) == []


def test_network_file_system_is_refused_with_an_explanation(data_dir, env):
    nfs = {**env, "GHOST_TEST_FS_TYPE": "nfs4"}
    one_error_line(ghost("run", "true", env=nfs), 77, data_dir, "network file system (nfs4)")
    assert ghost("run", "true", env=env).returncode == 0
    one_error_line(ghost("list", env=nfs), 77, "locking is unreliable")


def test_missing_data_dir_reads_empty_and_creates_nothing(data_dir, env):
    assert list_json(env) == []
    one_error_line(ghost("status", "abcd1234", env=env), 1, "task abcd1234 not found")
    one_error_line(ghost("log", "abcd1234", env=env), 1, "task abcd1234 not found")
    assert ghost("doctor", env=env).returncode == 0
    assert not os.path.exists(data_dir)
    assert ghost("run", "true", env=env).returncode == 0
    assert os.stat(data_dir).st_mode & 0o777 == 0o700


# -- dead readers and writers --------------------------------------------------------------

HOLD = textwrap.dedent("""
    import sys, time, lmdb
    env = lmdb.open(sys.argv[1], max_dbs=8)
    events = env.open_db(b"events")
    txn = env.begin(write=sys.argv[2] == "write")
    if sys.argv[2] == "write":
        txn.put((10**9).to_bytes(8, "big"), b"half-written", db=events)
    print("holding", flush=True)
    time.sleep(120)
""")


def hold_and_kill(store_path: str, mode: str) -> int:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, store_path, mode],
                              stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline() == b"holding\n"
    finally:
        holder.kill()
        holder.wait()
    return holder.pid


@contextlib.contextmanager
def witness(store_path: str) -> Iterator[lmdb.Environment]:
    """Keep the environment open here, as a live `ghost log -f` would: LMDB resets its lock
    table when the first process opens it, so without a witness no stale state would survive."""
    env = lmdb.open(store_path, max_dbs=8)
    try:
        yield env
    finally:
        env.close()


def reader_pids(env: lmdb.Environment) -> set[int]:
    lines = env.readers().splitlines()[1:]
    return {int(line.split()[0]) for line in lines if line.split()}


def test_reader_killed_holding_a_snapshot_is_cleared_by_the_next_command(data_dir, env):
    assert ghost("run", "true", env=env).returncode == 0
    store_path = os.path.join(data_dir, "store")
    with witness(store_path) as lmdb_env:
        dead = hold_and_kill(store_path, "read")
        assert dead in reader_pids(lmdb_env)
        assert ghost("list", env=env).returncode == 0
        assert dead not in reader_pids(lmdb_env)


def test_writer_killed_inside_a_transaction_does_not_block_the_next_one(data_dir, env):
    first = run_json("true", env=env)
    with witness(os.path.join(data_dir, "store")):
        hold_and_kill(os.path.join(data_dir, "store"), "write")
        began = time.monotonic()
        second = run_json("true", env=env)
        took = time.monotonic() - began
    assert took < 10, f"the next write waited {took:.1f} s for a dead writer's lock"
    wait_ended(first["id"], env)
    wait_ended(second["id"], env)
    events = all_events(data_dir)
    assert {e.task for e in events} == {first["id"], second["id"]}  # nothing half-written
    assert check_invariants(data_dir) == []


# -- undecodable, unknown and inconsistent data --------------------------------------------


def put_raw(data_dir: str, puts: dict[bytes, dict[bytes, bytes]],
            deletes: dict[bytes, list[bytes]] | None = None) -> None:
    """Write raw values straight into the store's databases, as damage or a newer ghost would."""
    env = lmdb.open(os.path.join(data_dir, "store"), max_dbs=8)
    try:
        with env.begin(write=True) as txn:
            for name, items in puts.items():
                db = env.open_db(name, txn=txn)
                for key, value in items.items():
                    txn.put(key, value, db=db)
            for name, keys in (deletes or {}).items():
                db = env.open_db(name, txn=txn)
                for key in keys:
                    assert txn.delete(key, db=db)
    finally:
        env.close()


def index_key(task: str, seq: int) -> bytes:
    return task.encode() + b"\0" + seq_key(seq)


def doctor_json(env: dict[str, str], code: int) -> dict:
    result = ghost("doctor", "--json", env=env)
    assert result.returncode == code, text(result)
    return json.loads(result.stdout)


def test_corrupt_and_unknown_events_are_skipped_and_reported_by_seq(data_dir, env):
    task = run_json("sh", "-c", "exit 4", env=env)
    wait_ended(task["id"], env)
    last = len(all_events(data_dir))
    future = codec.pack({"t": "migrated", "k": task["id"], "ts": 1, "v": 1, "d": {"x": 1}})
    wrong = codec.pack({"t": "exited", "k": task["id"], "ts": 1, "v": 1,
                        "d": {"code": "zero", "end_ns": 1}})
    put_raw(data_dir, {b"events": {seq_key(last + 1): b"\xc1\x00garbage",
                                   seq_key(last + 2): future, seq_key(last + 3): wrong,
                                   seq_key(last + 4): codec.pack(7)},
                       b"by_task": {index_key(task["id"], last + 2): b"",
                                    index_key(task["id"], last + 3): b""}})

    shown = list_json(env)
    assert [(t["id"], t["exit_code"]) for t in shown] == [(task["id"], 4)]
    for args in (["list"], ["status", task["id"]]):
        result = ghost(*args, env=env)
        assert result.returncode == 0
        assert text(result)[1].splitlines() == [  # skipped, counted, one warning line
            f"Warning: 1 event(s) from a newer ghost were skipped; 3 corrupt event(s) were "
            f"skipped (seq {last + 1}, {last + 3}, {last + 4}; run `ghost doctor`)"]
    report = doctor_json(env, 65)
    assert [c["seq"] for c in report["corrupt"]] == [last + 1, last + 3, last + 4]
    assert report["unknown"] == {"migrated": [last + 2]}
    assert report["gaps"] == [] and report["view_problems"] == []
    out, _ = text(ghost("doctor", env=env))
    assert f"Problem: corrupt event at seq {last + 1}: undecodable" in out
    assert "FAILED: 3 problem(s) found" in out

    after = run_json("true", env=env)  # the next write carries on after the damage
    assert wait_ended(after["id"], env)["status"] == "exited"
    assert [e.seq for e in all_events(data_dir)][-2:] == [last + 5, last + 6]


def test_unknown_events_alone_are_healthy(data_dir, env):
    task = run_json("true", env=env)
    wait_ended(task["id"], env)
    last = len(all_events(data_dir))
    future = codec.pack({"t": "exited", "k": task["id"], "ts": 1, "v": 99, "d": {}})
    put_raw(data_dir, {b"events": {seq_key(last + 1): future},
                       b"by_task": {index_key(task["id"], last + 1): b""}})
    assert doctor_json(env, 0)["unknown"] == {"exited": [last + 1]}
    assert list_json(env)[0]["status"] == "exited"


def test_doctor_finds_a_gap_a_stale_index_and_a_tampered_view(data_dir, env):
    task = run_json("sh", "-c", "exit 2", env=env)
    wait_ended(task["id"], env)
    other = run_json("true", env=env)
    wait_ended(other["id"], env)
    store = open_store(data_dir)
    try:
        row = store.view("tasks", VERSION)[0][task["id"]]
    finally:
        store.close()
    put_raw(data_dir, {b"view:tasks": {task["id"].encode(): codec.pack({**row, "exit_code": 0})},
                       b"by_task": {b"ghost-task\0" + seq_key(999): b""}},
            deletes={b"events": [seq_key(3)]})  # the other task's `spawned`
    report = doctor_json(env, 65)
    assert report["gaps"] == [{"from": 3, "to": 3}]
    assert any("ghost-task" in p for p in report["index_problems"]), report
    assert any(task["id"] in p and "exit_code 0 != 2" in p for p in report["view_problems"])
    assert any(other["id"] in p for p in report["view_problems"])
    assert ghost("list", env=env).returncode == 0


def test_doctor_flags_unsafe_file_modes(data_dir, env):
    wait_ended(run_json("true", env=env)["id"], env)
    os.chmod(os.path.join(data_dir, "store", "data.mdb"), 0o644)
    report = doctor_json(env, 77)
    assert report["file_problems"] == [
        f"{os.path.join(data_dir, 'store', 'data.mdb')} has mode 0644; expected 0600"]
    assert all(isinstance(e, Event) for e in all_events(data_dir))


# -- a fresh store on a full disk; a full disk and a failing disk told apart ---------------

FRESH_STORE = textwrap.dedent("""
    import sys
    from events.store import Store, StoreError
    try:
        Store.open(sys.argv[1], create=True)
    except StoreError as exc:
        print(exc.kind, exc, sep="\\n")
""")


def test_a_fresh_store_on_a_full_disk_is_an_error_not_sigbus(data_dir, env):
    with tmpfs(data_dir, "size=64k,mode=0700"):
        fill(os.path.join(data_dir, "filler"))
        store = os.path.join(data_dir, "store")
        os.mkdir(store, 0o700)
        result = subprocess.run([sys.executable, "-c", FRESH_STORE, store], capture_output=True)
        assert result.returncode == 0, (result.returncode, text(result))  # -7 was SIGBUS
        kind, message = result.stdout.decode().splitlines()
        assert kind == "disk_full" and "the disk is full (No space left on device)" in message
        shutil.rmtree(store)
        # `events --follow` creates the store (as the first `run` would) through the CLI.
        one_error_line(ghost("events", "--follow", env=env, timeout=20), 74,
                       f"cannot create the event store's lock file {store}/lock.mdb: the disk "
                       "is full (No space left on device)")


def test_a_full_disk_and_an_io_error_say_which_they_are(data_dir, tmp_path):
    from events.compaction import write_error
    from events.environment import describe

    assert describe(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == \
        "the disk is full (No space left on device)"
    assert describe(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))).startswith("the disk is full")
    assert describe(OSError(errno.EIO, os.strerror(errno.EIO))) == \
        "an I/O error on the disk (Input/output error)"
    eio = lmdb.Error("mdb_txn_commit: Input/output error")
    failing = write_error(str(tmp_path), eio)  # plenty of space here: the disk failed
    assert failing.kind == "io_error" and "an I/O error on the disk" in str(failing)
    assert write_error(str(tmp_path), lmdb.Error("x: No space left on device")).kind == "disk_full"
    with tmpfs(data_dir, "size=64k,mode=0700"):
        fill(os.path.join(data_dir, "filler"))
        short = write_error(data_dir, eio)  # LMDB's EIO for a short write on a full disk
        assert short.kind == "disk_full" and "the disk is full (a short write" in str(short)
    from ghost.state.store import as_ghost_error
    assert as_ghost_error(failing).exit_code == as_ghost_error(short).exit_code == 74
