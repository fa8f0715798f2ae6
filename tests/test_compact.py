"""`ghost compact`: the space of cleaned tasks given back, nothing else changed, and processes
that had the old file open (writers waiting, a monitor, a reader) carry on in the new one."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
from support import GHOST, ghost, run_json, text, wait_ended
from test_faults_crash import check_invariants

from events.store import Store
from events.types import CLEANED, EXITED, SPAWNED, Event, make
from ghost import datadir
from ghost.process import identity
from projections.checkpoint import VERSION, VIEWS

TASKS = 5000
MADE_UP_PID = 2**22 - 7  # the made-up tasks' pid: never a live process of this test


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Iterator[str]:
    """Like conftest's, but the clean-up skips the thousands of made-up tasks (it would walk
    /proc for each one) and kills only the processes this test started."""
    path = str(tmp_path / "ghost-data")
    monkeypatch.setenv("GHOST_DATA_DIR", path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    yield path
    store = Store.open(os.path.join(path, "store"), create=False)
    if store is None:
        return
    try:
        real = [e for e in store.scan() if isinstance(e, Event) and e.type == SPAWNED
                and e.data["pid"] != MADE_UP_PID]
    finally:
        store.close()
    for event in real:
        identity.signal_task(event.data["pid"], event.data["pgid"], event.data["start_ticks"],
                             signal.SIGKILL)
        monitor = event.data.get("monitor") or {}
        mpid = int(monitor.get("pid", 0))
        if mpid > 1 and identity.start_ticks(mpid) == monitor.get("start_ticks"):
            os.kill(mpid, signal.SIGKILL)


def fill_and_clean(data_dir: str, count: int = TASKS) -> None:
    """`count` tasks that started, ended and were cleaned (written straight into the store)."""
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    try:
        ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(count)]
        for start in range(0, count, 250):
            batch = ids[start:start + 250]
            store.append([e for t in batch for e in (
                make(SPAWNED, t, command=["true"], cwd="/", pid=MADE_UP_PID, pgid=MADE_UP_PID,
                     start_ticks=1, boot_id="", log_path=datadir.log_path(t, data_dir)),
                make(EXITED, t, code=0, end_ns=time.time_ns()))])
        for start in range(0, count, 250):
            store.append([make(CLEANED, t, log_removed=False) for t in ids[start:start + 250]])
    finally:
        store.close()


def snapshot(data_dir: str, env: dict[str, str]) -> tuple[bytes, dict, int]:
    """Every event as exported, the stored task view and the seq it has applied."""
    events = ghost("events", env=env)
    assert events.returncode == 0, text(events)
    store = Store.open(os.path.join(data_dir, "store"), create=False, views=VIEWS)
    assert store is not None
    try:
        rows, applied = store.view("tasks", VERSION) or ({}, -1)
    finally:
        store.close()
    return events.stdout, rows, applied


def sizes(out: str) -> tuple[float, float]:
    found = re.search(r": ([\d.]+) (k|M)B -> ([\d.]+) (k|M)B \(", out)
    assert found, out
    scale = {"k": 1e3, "M": 1e6}
    return (float(found[1]) * scale[found[2]], float(found[3]) * scale[found[4]])


def test_compact_gives_the_space_of_cleaned_tasks_back_and_changes_nothing_else(data_dir, env):
    keep = run_json("sh", "-c", "echo kept", env=env)
    wait_ended(keep["id"], env)
    fill_and_clean(data_dir)
    data = os.path.join(data_dir, "store", "data.mdb")
    before_size = os.path.getsize(data)
    before = snapshot(data_dir, env)

    result = ghost("compact", env=env)
    out, err = text(result)
    assert result.returncode == 0 and err == "", (out, err)
    assert out.startswith(f"Compacted the event store in {os.path.join(data_dir, 'store')}: ")
    shown_before, shown_after = sizes(out)
    after_size = os.path.getsize(data)
    assert abs(shown_before - before_size) < 0.1e6 and abs(shown_after - after_size) < 0.1e6
    assert after_size < before_size * 0.8, (before_size, after_size)
    assert snapshot(data_dir, env) == before
    assert os.stat(data).st_mode & 0o777 == 0o600
    assert sorted(os.listdir(os.path.join(data_dir, "store"))) == ["data.mdb", "lock.mdb", "wake"]
    assert ghost("doctor", env=env).returncode == 0
    assert [t["id"] for t in json.loads(ghost("list", "--json", env=env).stdout)] == [keep["id"]]
    again = json.loads(ghost("compact", "--json", env=env).stdout)  # nothing left to give back
    assert again["after"] <= again["before"] <= after_size


def test_runs_a_monitor_and_a_reader_carry_on_across_a_compaction(data_dir, env):
    fill_and_clean(data_dir, 2000)
    running = run_json("sh", "-c", "sleep 1.5; exit 3", env=env)  # its monitor has the old file
    reader = Store.open(os.path.join(data_dir, "store"), create=False, views=VIEWS)
    assert reader is not None
    try:
        seen = reader.last_seq()
        runs = [subprocess.Popen([*GHOST, "run", "--json", "true"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(8)]
        compacts = [subprocess.Popen([*GHOST, "compact"], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE) for _ in range(2)]
        started = []
        for process in [*runs, *compacts]:
            out, err = process.communicate(timeout=60)
            assert process.returncode == 0, (out, err)
            assert err == b"", err
            if process in runs:
                started.append(json.loads(out.decode().splitlines()[0])["id"])
        assert wait_ended(running["id"], env, timeout=30)["exit_code"] == 3
        for task in started:
            assert wait_ended(task, env)["exit_code"] == 0
        # The reader opened before the compactions sees what was written after them.
        last = json.loads(ghost("events", env=env).stdout.splitlines()[-1])["seq"]
        assert last == seen + 8 * 2 + 1  # 8 runs started and ended, and the running task ended
        assert reader.last_seq() == last
    finally:
        reader.close()
    listed = {t["id"] for t in json.loads(ghost("list", "--json", env=env).stdout)}
    assert listed == {running["id"], *started}
    assert check_invariants(data_dir) == []
    assert ghost("doctor", env=env).returncode == 0
