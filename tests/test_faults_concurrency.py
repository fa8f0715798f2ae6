"""Concurrency: many ghost processes writing and reading one event log at the same moment.

Every write is one LMDB transaction that reads the views under the writer lock, so nothing is
recorded twice and the sequence stays gap-free however the processes interleave. (Two `stop`s of
one task at once are covered by tests/test_stop.py::test_concurrent_stops_record_one_end.)
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter

from support import GHOST, run_json, wait_ended, wait_for
from test_faults_crash import all_events, check_invariants, list_json, settle

from events import types as ev

RUNS = 50


def start_all(commands: list[list[str]], env: dict[str, str]) -> list[subprocess.Popen]:
    return [subprocess.Popen([*GHOST, *args], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE) for args in commands]


def finish_all(procs: list[subprocess.Popen]) -> list[tuple[int, bytes, bytes]]:
    done = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=180)
            done.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return done


def test_fifty_runs_with_concurrent_list_stop_and_cleanup(data_dir, env):
    sleepers = [run_json("sleep", "60", env=env) for _ in range(3)]
    finished = [run_json("true", env=env) for _ in range(3)]
    for task in finished:
        wait_ended(task["id"], env)

    commands = [["run", "--json", "sleep", "60"] if i % 2 else ["run", "--json", "true"]
                for i in range(RUNS)]
    commands += [["list", "--json"]] * 5 + [["cleanup", "--all"]] * 2
    commands += [["stop", "--timeout", "5", t["id"]] for t in sleepers]
    results = finish_all(start_all(commands, env))

    for args, (code, out, err) in zip(commands, results, strict=True):
        assert code == 0, (args, out, err)
    started = [json.loads(out) for (_, out, _), args in zip(results, commands, strict=True)
               if args[0] == "run"]
    ids = [t["id"] for t in started]
    assert len(set(ids)) == RUNS

    quick = {t["id"] for t in started if t["command"] == ["true"]}

    def ended() -> set[str]:
        return {e.task for e in all_events(data_dir) if e.type == ev.EXITED} >= quick

    wait_for(ended, timeout=60, message="every `true` task to end")
    settle(data_dir, env)
    events = all_events(data_dir)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    per_task = Counter((e.task, e.type) for e in events if isinstance(e, ev.Event))
    assert all(per_task[(task, ev.SPAWNED)] == 1 for task in ids)
    assert [key for key, n in per_task.items() if n > 1 and key[1] != ev.STOP_REQUESTED] == []
    for task in finished:  # cleaned exactly once, by one of the two cleanups
        assert per_task[(task["id"], ev.CLEANED)] == 1
    for task in sleepers:
        assert per_task[(task["id"], ev.KILLED)] == 1
    shown = {t["id"]: t["status"] for t in list_json(env)}
    assert [task for task in ids if shown.get(task) == "running"] == \
        [t["id"] for t in started if t["command"] == ["sleep", "60"]]
    assert check_invariants(data_dir) == []
