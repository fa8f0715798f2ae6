"""`ghost events` over a backlog big enough to be encoded by several processes.

The output must be exactly what one process writes (the stdlib reference, record for record and
byte for byte), in seq order, for both formats and from any --from; a reader that goes away or a
Ctrl+C ends every worker, quietly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from support import GHOST, ghost, text, wait_for
from test_faults_crash import tagged_pids

from events.store import Store
from events.types import Event
from ghost.actions.audit import CHUNK
from ghost.actions.events import PARALLEL_FROM, WORKERS_VAR
from ghost.faults import CRASH_ENV, FORK_FAIL_ENV
from ghost.state import records as export

TASKS = PARALLEL_FROM // 2 + 2_000  # two events each: past the threshold
PID_BEYOND_MAX = 4_194_304  # above Linux's largest pid_max: these tasks can never be signalled


def fill(data_dir: str) -> list[Event]:
    from ghost import datadir as paths
    from projections.checkpoint import VIEWS

    paths.prepare(create=True)
    store = Store.open(paths.store_dir(data_dir), create=True, views=VIEWS)
    assert store is not None
    stamp = 1_792_666_383_186_715_220
    try:
        for first in range(0, TASKS, 1_000):
            batch = []
            for n in range(first, min(TASKS, first + 1_000)):
                task = f"{n:08x}-0000-4000-8000-{n:012x}"
                pid = PID_BEYOND_MAX + n
                batch.append(Event("spawned", task, {
                    "command": ["sleep", str(n), "caf\u00e9 \"q\""], "cwd": "/srv", "pid": pid,
                    "pgid": pid, "start_ticks": 1, "boot_id": "b", "log_path": f"/l/{task}",
                    "env_keys": ["PORT"], "actor": {"via": "cli", "uid": 0, "pid": 7}},
                    stamp + n * 1_000_003, 1))
                batch.append(Event("exited", task, {"code": n % 3, "end_ns": stamp + n},
                                   stamp + n * 1_000_003 + 500, 1))
            store.append(batch)
        return list(store.scan())
    finally:
        store.close()


@pytest.fixture(scope="module")
def backlog(tmp_path_factory) -> tuple[str, list[Event], str]:
    """One shared store (filling it takes a few seconds); the tests only read it."""
    data_dir = str(tmp_path_factory.mktemp("export") / "ghost-data")
    saved = os.environ.get("GHOST_DATA_DIR")
    os.environ["GHOST_DATA_DIR"] = data_dir
    try:
        events = fill(data_dir)
        store = Store.open(os.path.join(data_dir, "store"), create=False)
        assert store is not None
        store_id = store.store_id
        store.close()
    finally:
        if saved is None:
            os.environ.pop("GHOST_DATA_DIR")
        else:
            os.environ["GHOST_DATA_DIR"] = saved
    return data_dir, events, store_id


def env_for(data_dir: str, workers: str | None = None) -> dict[str, str]:
    env = {**os.environ, "GHOST_DATA_DIR": data_dir}
    for name in (WORKERS_VAR, CRASH_ENV, FORK_FAIL_ENV):
        env.pop(name, None)
    if workers is not None:
        env[WORKERS_VAR] = workers
    return env


@pytest.mark.parametrize("workers", [None, "3"])
def test_parallel_export_is_byte_for_byte_the_single_process_export(backlog, workers):
    data_dir, events, store_id = backlog
    assert len(events) >= PARALLEL_FROM
    done = ghost("events", env=env_for(data_dir, workers), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == export.jsonl_stdlib(events, store_id)
    middle = len(events) // 2 + 17
    resumed = ghost("events", "--from", str(middle), env=env_for(data_dir, workers), timeout=120)
    assert resumed.stdout == export.jsonl_stdlib(events[middle:], store_id)


def test_parallel_msgpack_export_matches_too(backlog):
    data_dir, events, store_id = backlog
    done = ghost("events", "--format", "msgpack", env=env_for(data_dir, "2"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == export.msgpack_records(events, store_id)


def _exporters(data_dir: str) -> list[int]:
    """Live processes (ghost events or its workers) running with this data dir."""
    return tagged_pids(f"GHOST_DATA_DIR={data_dir}")


@pytest.mark.parametrize("end", ["reader goes away", "ctrl-c"])
def test_an_export_cut_short_ends_every_worker_quietly(backlog, end):
    data_dir, _, _ = backlog
    proc = subprocess.Popen([*GHOST, "events"], env=env_for(data_dir, "3"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.read(100).startswith(b'{"seq":1,')  # nobody reads on: it blocks
        wait_for(lambda: len(_exporters(data_dir)) >= 3, timeout=30,
                 message="the export workers to start")
        if end == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl+C does
        else:
            proc.stdout.close()
        assert proc.wait(timeout=60) == (130 if end == "ctrl-c" else 0)
        assert proc.stderr.read() == b""
        wait_for(lambda: _exporters(data_dir) == [], timeout=30,
                 message="every export worker to end")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_worker_count_is_one_clear_error(backlog):
    data_dir, _, _ = backlog
    done = ghost("events", env=env_for(data_dir, "none"))
    out, err = text(done)
    assert done.returncode == 2 and out == ""
    assert err == f"Error: invalid {WORKERS_VAR}='none': must be a whole number of 1 or more\n"


def test_a_worker_that_dies_is_an_error_after_the_records_before_it(backlog):
    """SIGKILL of a worker before it sends anything: the output stops at a record boundary
    after the chunks already in order, one Error line, exit 1, no process left behind."""
    data_dir, events, store_id = backlog
    env = {**env_for(data_dir, "2"), CRASH_ENV: "export:worker"}
    done = ghost("events", env=env, timeout=120)
    out, err = text(done)
    assert (done.returncode, err) == (1, "Error: an export worker ended before sending its "
                                         "events\n")
    reference = export.jsonl_stdlib(events, store_id)
    assert done.stdout.endswith(b"\n") and reference.startswith(done.stdout)
    assert len(done.stdout.splitlines()) == CHUNK  # the first chunk is this process's own
    wait_for(lambda: _exporters(data_dir) == [], timeout=30, message="no exporter left")


def test_without_a_process_to_spare_the_export_runs_in_one(backlog):
    data_dir, events, store_id = backlog
    env = {**env_for(data_dir, "3"), FORK_FAIL_ENV: "export:fork-worker"}
    done = ghost("events", env=env, timeout=120)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout == export.jsonl_stdlib(events, store_id)


def test_follow_goes_on_from_where_the_parallel_backlog_ended(tmp_path, monkeypatch):
    # Not the data_dir fixture: its clean-up would check each of the 26,000 made-up tasks.
    data_dir = str(tmp_path / "ghost-data")
    monkeypatch.setenv("GHOST_DATA_DIR", data_dir)
    env = env_for(data_dir, "2")
    events = fill(data_dir)
    proc = subprocess.Popen([*GHOST, "events", "--follow"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        seqs = [json.loads(proc.stdout.readline())["seq"] for _ in events]
        assert seqs == list(range(1, len(events) + 1))
        store = Store.open(os.path.join(data_dir, "store"), create=False)
        assert store is not None
        try:
            store.append([Event("exited", events[0].task, {"code": 0, "end_ns": 1}, 2, 1)])
        finally:
            store.close()
        assert json.loads(proc.stdout.readline())["seq"] == len(events) + 1
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 130
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_worker_error_reaches_the_parent_as_its_own(backlog, monkeypatch):
    """A worker that fails sends its error (message and exit code) instead of a chunk."""
    from ghost.actions import events as export_stream
    from ghost.errors import GhostError
    from ghost.state import store as state

    data_dir, _, store_id = backlog
    monkeypatch.setenv("GHOST_DATA_DIR", data_dir)

    def failing(items, store):
        raise GhostError("cannot write the event store: disk full", 74)

    state.close_stores()  # as _parallel does: no store of this process crosses the fork
    pid, pipe = export_stream._fork([(0, 10)], failing, store_id, [])
    try:
        with pytest.raises(GhostError) as raised:
            export_stream._received(pipe)
        assert (raised.value.message, raised.value.exit_code) == \
            ("cannot write the event store: disk full", 74)
        assert os.waitpid(pid, 0)[1] != 0  # and it exited with a failure
    finally:
        pipe.close()
