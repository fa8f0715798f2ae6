"""A damaged store, one kind of damage at a time: a truncated or emptied data file, a damaged view
row, meta value or page, a key of the wrong length, flipped bits. Every command answers with
no traceback and no signal: it works (damage it can skip) or prints one `Error:` line naming
the store and what to do, exit 65; `ghost doctor` reports the damage (exit 65); and
`ghost doctor --salvage` puts every readable event into a new store and keeps the damaged one."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Callable, Iterator

import lmdb
import pytest
from support import ghost, run_json, text, wait_ended

from events import codec
from events.store import Store, StoreError

DATA_ERR = 65
COMMANDS = (["list"], ["status", "{task}"], ["log", "{task}"], ["events"], ["history"],
            ["cleanup", "--all"], ["run", "true"])  # the writes last
PAGE = 4096


def events_of(env: dict[str, str]) -> list[str]:
    result = ghost("events", env=env)
    assert result.returncode == 0, text(result)
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    # A salvaged store numbers its events anew (its id: below): compare everything else.
    return [json.dumps({k: v for k, v in r.items() if k not in ("seq", "store")},
                       sort_keys=True) for r in rows]


def with_db(data_dir: str, name: bytes, change: Callable[[lmdb.Transaction, object], None]) -> None:
    env = lmdb.open(os.path.join(data_dir, "store"), max_dbs=8)
    try:
        with env.begin(write=True) as txn:
            change(txn, env.open_db(name, txn=txn))
    finally:
        env.close()


def first_key(txn: lmdb.Transaction, db: object) -> bytes:
    return next(iter(txn.cursor(db=db)))[0]


def event_values(data: bytearray) -> list[tuple[int, int]]:
    """(page start, value offset) of every event value in the leaf pages (a 5-entry map)."""
    found = []
    for start in range(2 * PAGE, len(data), PAGE):
        flags, lower = struct.unpack_from("<HH", data, start + 10)
        if flags != 0x02:
            continue
        for i in range((lower - 16) >> 1):
            node = start + struct.unpack_from("<H", data, start + 16 + 2 * i)[0]
            ksize = struct.unpack_from("<H", data, node + 6)[0]
            if ksize == 8 and data[node + 16] == 0x85:
                found.append((start, node + 16))
    return found


def flip(data_dir: str, where: str) -> None:
    path = os.path.join(data_dir, "store", "data.mdb")
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        values = event_values(data)
        if where == "values":  # two values in every copy of their page: no longer maps
            targets = {bytes(data[o:o + 40]) for _, o in values[:2]}
            for _, offset in values:
                if bytes(data[offset:offset + 40]) in targets:
                    data[offset] ^= 0x80
        else:  # the live leaf of events (the fullest copy): a page of the wrong type for LMDB
            pages = [start for start, _ in values]
            data[max(pages, key=lambda p: (pages.count(p), p)) + 10] ^= 0x06
        f.seek(0)
        f.write(bytes(data))


def damage(kind: str, data_dir: str) -> None:
    store = os.path.join(data_dir, "store")
    if kind == "truncated":
        os.truncate(os.path.join(store, "data.mdb"), 8192)
    elif kind == "emptied":
        os.truncate(os.path.join(store, "data.mdb"), 0)
    elif kind == "emptied-beside-logs":
        os.truncate(os.path.join(store, "data.mdb"), 0)
        os.unlink(os.path.join(store, "wake"))
    elif kind == "view-row":
        with_db(data_dir, b"view:tasks",
                lambda txn, db: txn.put(first_key(txn, db), b"\xc1\x00", db=db))
    elif kind == "view-row-shape":
        with_db(data_dir, b"view:tasks", lambda txn, db: txn.put(first_key(txn, db), b"\x07",
                                                                  db=db))
    elif kind == "view-row-types":  # a map, as a row should be, with fields of the wrong type
        def retype(txn: lmdb.Transaction, db: object) -> None:
            key = first_key(txn, db)
            row = codec.unpack(txn.get(key, db=db))
            txn.put(key, codec.pack({**row, "pid": "x", "started_ns": [1]}), db=db)
        with_db(data_dir, b"view:tasks", retype)
    elif kind == "meta-value":
        with_db(data_dir, b"meta", lambda txn, db: txn.put(b"store_id", b"\xc1", db=db))
    elif kind == "key-length":
        with_db(data_dir, b"events", lambda txn, db: txn.put(
            first_key(txn, db) + b"!", b"\x80", db=db))
    else:
        flip(data_dir, kind.removeprefix("bits-"))


KINDS = ("truncated", "emptied", "emptied-beside-logs", "view-row", "view-row-shape",
         "view-row-types", "meta-value", "key-length", "bits-values", "bits-page")
# Damage every command meets (the rest may skip it and succeed).
FATAL = {"truncated", "emptied", "meta-value", "bits-page"}


@pytest.fixture
def recorded(data_dir, env) -> Iterator[tuple[list[str], list[str]]]:
    tasks = [run_json("sh", "-c", f"echo {i}", env=env)["id"] for i in range(3)]
    for task in tasks:
        wait_ended(task, env)
    yield tasks, events_of(env)
    store = os.path.join(data_dir, "store")
    try:  # a store left damaged goes aside, so the clean-up can read the one that works
        opened = Store.open(store, create=False)
        if opened is not None:
            opened.close()
    except StoreError:
        os.rename(store, store + ".left-damaged")


def assert_no_crash(result, command: list[str]) -> str:
    out, err = text(result)
    assert "Traceback" not in err and result.returncode in (0, DATA_ERR), (command, out, err)
    assert result.returncode >= 0, f"{command} died of signal {-result.returncode}"
    if result.returncode:
        assert err.startswith("Error: ") and err.count("\n") == 1, (command, err)
        assert "ghost doctor --salvage" in err, err
    return err


@pytest.mark.parametrize("kind", KINDS)
def test_damage_is_one_error_line_doctor_65_and_salvage_recovers_readable_events(
        kind, recorded, data_dir, env):
    tasks, before = recorded
    store_id = json.loads(ghost("events", env=env).stdout.splitlines()[0])["store"]
    damage(kind, data_dir)
    failed = []
    for command in COMMANDS:
        args = [a.replace("{task}", tasks[0]) for a in command]
        if assert_no_crash(ghost(*args, env=env), args):
            failed.append(args[0])
    if kind in FATAL:
        assert set(failed) >= {"list", "events", "history", "cleanup", "run"}, failed
    if kind in ("view-row", "view-row-shape", "view-row-types"):
        assert "list" in failed and "status" in failed
    if kind == "key-length":
        assert "events" in failed
    for args in (["doctor"], ["doctor", "--json"]):
        result = ghost(*args, env=env)
        out, err = text(result)
        assert result.returncode == DATA_ERR and "Traceback" not in err and err == "", (out, err)
    assert "FAILED" in text(ghost("doctor", env=env))[0]

    salvaged = ghost("doctor", "--salvage", env=env)
    out, err = text(salvaged)
    assert salvaged.returncode == 0 and err == "", (out, err)
    kept = [n for n in os.listdir(data_dir) if n.startswith("store.damaged-")]
    assert len(kept) == 1 and f"kept at {os.path.join(data_dir, kept[0])}" in out
    # `run` and `cleanup` above may have recorded more where the damage let them.
    after = [e for e in events_of(env) if json.loads(e)["task"] in tasks
             and json.loads(e)["type"] != "cleaned"]
    assert set(after) <= set(before) and len(set(after)) == len(after)
    expected = {"truncated": 0, "emptied": 0, "emptied-beside-logs": 0,
                "bits-values": len(before) - 2}.get(kind, len(before))
    if kind != "bits-page":  # the damaged page's events are gone unless an old copy survives
        assert len(after) == expected, (out, after)
    assert [e for e in before if e in set(after)] == after  # in their order
    if kind in ("view-row", "view-row-types", "key-length", "bits-values"):  # id kept
        ids = {json.loads(line)["store"] for line in ghost("events", env=env).stdout.splitlines()}
        assert ids == {store_id}
    assert ghost("doctor", env=env).returncode == 0, text(ghost("doctor", env=env))
    assert ghost("run", "true", env=env).returncode == 0


def test_an_empty_data_file_beside_task_logs_is_not_a_new_history(recorded, data_dir, env):
    damage("emptied-beside-logs", data_dir)
    err = assert_no_crash(ghost("list", env=env), ["list"])
    assert "is empty, but 3 task log(s) sit beside it" in err
    assert os.path.getsize(os.path.join(data_dir, "store", "data.mdb")) == 0  # left as found


def test_a_truncated_store_names_the_file_and_the_sizes(recorded, data_dir, env):
    damage("truncated", data_dir)
    err = assert_no_crash(ghost("list", env=env), ["list"])
    path = os.path.join(data_dir, "store", "data.mdb")
    assert f"the event store {path} is damaged: it is 8192 bytes but its own header says" in err
    report = json.loads(ghost("doctor", "--json", env=env).stdout)
    assert report["exit_code"] == DATA_ERR and "truncated" in report["store_problems"][0]
