"""`ghost list --at T` and `ghost status ID --at T`: the views as they were at a past time."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from support import ghost, run_json, text, wait_ended

from events.types import CLEANED, EXITED, SPAWN_FAILED, SPAWNED, STOP_REQUESTED, Event
from projections.checkpoint import FORGETTING, VERSION, tasks_at
from projections.tasks import apply, rebuild


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat(timespec="microseconds")


def listed_at(ns: int, env: dict[str, str]) -> dict[str, str]:
    result = ghost("list", "--json", "--at", iso(ns), env=env)
    assert result.returncode == 0, text(result)[1]
    return {t["id"]: t["status"] for t in json.loads(result.stdout)}


def test_list_and_status_at_every_stage_of_a_task(data_dir, env):
    other = run_json("true", env=env)["id"]  # something in the log before our task
    wait_ended(other, env)
    task = run_json("sh", "-c", "sleep 0.3; exit 5", env=env)["id"]
    wait_ended(task, env)
    assert ghost("cleanup", "--all", env=env).returncode == 0
    times = {(e["task"], e["type"]): e["time_ns"]
             for e in map(json.loads, ghost("events", env=env).stdout.splitlines())}
    spawned, exited = times[task, "spawned"], times[task, "exited"]
    cleaned = min(times[task, "cleaned"], times[other, "cleaned"])  # one cleanup, both tasks
    ms = 1_000_000

    assert task not in listed_at(spawned - ms, env)  # before it started
    assert listed_at(spawned + ms, env)[task] == "running"
    assert listed_at(exited + ms, env)[task] == "exited"
    assert listed_at(cleaned - ms, env) == {other: "exited", task: "exited"}
    assert listed_at(cleaned + ms, env) == {}
    assert ghost("list", "--json", "--at", "now", env=env).stdout.strip() == b"[]"

    running = ghost("status", task[:8], "--at", iso(spawned + ms), env=env)
    assert running.returncode == 0 and "Status: running" in text(running)[0]
    ended = json.loads(ghost("status", task, "--json", "--at", iso(cleaned - ms), env=env).stdout)
    assert (ended["status"], ended["exit_code"]) == ("exited", 5)
    gone = ghost("status", task, "--at", "now", env=env)
    assert gone.returncode == 1
    assert text(gone)[1] == (f"Error: task {task} not found at now "
                             "(not started yet, or already cleaned)\n")
    early = ghost("status", task, "--at", iso(spawned - ms), env=env)
    assert early.returncode == 1 and "not started yet" in text(early)[1]

    table = ghost("list", "--at", iso(spawned + ms), env=env)
    assert text(table)[0].splitlines()[2].split()[:3] == [task, str(ended["pid"]), "running"]
    bad = ghost("list", "--at", "soonish", env=env)
    assert bad.returncode == 2 and text(bad)[1].startswith("Error: cannot understand time "
                                                           "'soonish'")


def test_forgetting_events_leave_nothing_whatever_came_before():
    """tasks_at drops a task's held events at these types; that is exact only if apply agrees."""
    start = Event(SPAWNED, "t", {"command": ["x"], "cwd": "/", "pid": 2, "pgid": 2,
                                 "start_ticks": 1, "boot_id": "b", "log_path": "/l"}, 1, 1, 1)
    states = [None, apply(None, start)]
    states.append(apply(states[1], Event(EXITED, "t", {"code": 0, "end_ns": 2}, 2, 1, 2)))
    for kind in FORGETTING:
        for state in states:
            assert apply(state, Event(kind, "t", {}, 3, 1, 3)) is None


def test_tasks_at_equals_folding_every_event_up_to_t(tmp_path, monkeypatch):
    """tasks_at (snapshots, skipped time blocks, held-back folds) against the plain definition,
    at every event's time, on a real store with clocks that sometimes step far back."""
    from events import timeline
    from events.store import Store
    from projections.checkpoint import VIEWS

    monkeypatch.setattr(timeline, "SNAPSHOT_EVERY", 37)  # many snapshots and blocks in 400
    monkeypatch.setattr(timeline, "TIME_BLOCK", 16)
    monkeypatch.setattr("projections.checkpoint.TIME_BLOCK", 16)
    rng = random.Random(7)
    log: list[Event] = []
    for seq in range(1, 400):
        task = f"task-{rng.randrange(12)}"
        kind = rng.choice([SPAWNED, SPAWNED, STOP_REQUESTED, EXITED, CLEANED, SPAWN_FAILED])
        data = {SPAWNED: {"command": ["c"], "cwd": "/", "pid": seq, "pgid": seq,
                          "start_ticks": seq, "boot_id": "b", "log_path": "/l"},
                STOP_REQUESTED: {"signal": "SIGTERM", "timeout": 1.0, "force": False},
                EXITED: {"code": seq % 4, "end_ns": seq}, CLEANED: {"log_removed": False},
                SPAWN_FAILED: {"command": ["c"], "cwd": "/", "error": "e", "exit_code": 1}}[kind]
        # wall clock mostly rising, sometimes stepping back a little or a lot: order is seq,
        # time is only a filter
        step = rng.random()
        stamp = seq * 10 - (25 if step < 0.1 else 1500 if step < 0.13 else 0)
        log.append(Event(kind, task, data, stamp, 1, seq))

    store = Store.open(str(tmp_path / "store"), create=True, views=VIEWS)
    assert store is not None
    try:
        rest = list(log)
        while rest:
            size = rng.choice([1, 3, 20, 50])
            store.append(rest[:size])
            rest = rest[size:]
        assert store.snapshot("tasks", VERSION, 10**9) is not None  # the shortcut is exercised
        assert store.skippable_blocks(200)
        for at in sorted({e.time_ns for e in log} | {-10**6, 0, 10**9}):
            assert tasks_at(store, at) == rebuild(e for e in log if e.time_ns <= at), at
    finally:
        store.close()
