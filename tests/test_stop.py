"""`ghost stop` and `ghost kill`: the whole group ends, the end is recorded once and exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from support import GHOST, ghost, pid_alive, run_json, status_json, text, wait_ended, wait_for

from events.store import Store
from events.types import EXITED, KILLED, SPAWNED, STOP_REQUESTED, Event
from ghost.process.identity import group_members

# Ignores SIGTERM, says so in its log, then sleeps: only SIGKILL ends it.
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(300)")
# Ends cleanly with code 0 on SIGTERM.
GRACEFUL = ("import signal, sys, time; "
            "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); "
            "print('ready', flush=True); time.sleep(300)")


def task_events(data_dir: str, task_id: str, *types: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.task_events(task_id)
                if isinstance(e, Event) and e.type in types]
    finally:
        store.close()


def started_ready(code: str, env: dict[str, str]) -> dict:
    """Start a python task and wait until it has installed its signal handler."""
    task = run_json(sys.executable, "-c", code, env=env)

    def ready() -> bool:
        with open(task["log_path"], "rb") as f:
            return f.read() == b"ready\n"

    wait_for(ready, 20, message="the task to install its SIGTERM handler")
    return task


def test_stop_records_sigterm(data_dir, env):
    task = run_json("sleep", "300", env=env)
    result = ghost("stop", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    assert text(result) == (f"Process {task['id']} ({task['pid']}) has been exited\n", "")
    ended = status_json(task["id"], env)
    assert (ended["status"], ended["signal"], ended["exit_code"]) == ("killed", "SIGTERM", None)
    assert not pid_alive(task["pid"])
    [request] = task_events(data_dir, task["id"], STOP_REQUESTED)
    assert (request.data["signal"], request.data["force"]) == ("SIGTERM", False)


def test_graceful_shutdown_is_recorded_as_exited(data_dir, env):
    task = started_ready(GRACEFUL, env)
    result = ghost("stop", "--json", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert (data["id"], data["status"], data["exit_code"]) == (task["id"], "exited", 0)
    assert data["finished_at"] is not None


def test_kill_and_stop_force_record_sigkill(data_dir, env):
    first = started_ready(STUBBORN, env)
    second = started_ready(STUBBORN, env)
    for task, args in ((first, ("kill",)), (second, ("stop", "--force"))):
        result = ghost(*args, task["id"], env=env)
        assert result.returncode == 0, result.stderr
        assert text(result) == (f"Process {task['id']} ({task['pid']}) has been killed\n", "")
        ended = status_json(task["id"], env)
        assert (ended["status"], ended["signal"]) == ("killed", "SIGKILL")
        [request] = task_events(data_dir, task["id"], STOP_REQUESTED)
        assert (request.data["signal"], request.data["force"]) == ("SIGKILL", True)


def test_sigterm_is_escalated_after_the_timeout(data_dir, env):
    task = started_ready(STUBBORN, env)
    began = time.monotonic()
    result = ghost("stop", "--timeout", "0.5", task["id"], env=env)
    took = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    # S0's words, then what really happened (issue 13)
    assert text(result)[0] == (f"Process {task['id']} ({task['pid']}) has been exited "
                               "(SIGKILL after 0.5 s)\n")
    assert took >= 0.5
    ended = status_json(task["id"], env)
    assert (ended["status"], ended["signal"]) == ("killed", "SIGKILL")
    requests = task_events(data_dir, task["id"], STOP_REQUESTED)
    assert [(r.data["signal"], r.get("escalated")) for r in requests] == [
        ("SIGTERM", False), ("SIGKILL", True)]


def test_stop_ends_the_whole_group(data_dir, env):
    task = run_json("sh", "-c", "sleep 300 & sleep 300 & wait", env=env)
    pgid = task["pid"]
    members = wait_for(lambda: len(group_members(pgid, 0)) >= 3 and group_members(pgid, 0),
                       message="the shell and both sleeps")
    result = ghost("stop", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    assert group_members(pgid, 0) == []
    assert not any(pid_alive(pid) for pid in members)
    assert status_json(task["id"], env)["status"] == "killed"


def test_group_outliving_its_leader_is_stopped(data_dir, env):
    # The leader exits at once; its background child lives on in the group.
    task = run_json("sh", "-c", "sleep 300 & echo started", env=env)
    ended = wait_ended(task["id"], env)
    assert ended["status"] == "exited"
    wait_for(lambda: group_members(task["pid"], 0), message="the orphaned sleep")
    status = text(ghost("status", task["id"], env=env))[0]
    assert "Status: exited (0), 1 process still running in its group" in status
    result = ghost("stop", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    assert group_members(task["pid"], 0) == []


def test_stopping_a_finished_task_is_refused(data_dir, env):
    task = run_json("sh", "-c", "exit 3", env=env)
    wait_ended(task["id"], env)
    for args in (("stop",), ("kill",), ("stop", "--force")):
        result = ghost(*args, task["id"], env=env)
        out, err = text(result)
        assert result.returncode == 1 and out == ""
        assert len(err.splitlines()) == 1 and err.startswith("Error: ")
        assert "not running" in err and "exited with code 3" in err and task["id"] in err
    assert task_events(data_dir, task["id"], STOP_REQUESTED) == []
    assert status_json(task["id"], env)["exit_code"] == 3


def test_bad_timeout_and_unknown_task(data_dir, env):
    task = run_json("sleep", "300", env=env)
    result = ghost("stop", "--timeout", "-1", task["id"], env=env)
    assert result.returncode == 2 and "-1" in text(result)[1]
    assert status_json(task["id"], env)["status"] == "running"
    missing = ghost("stop", "0000000000", env=env)
    assert missing.returncode == 1 and "not found" in text(missing)[1]


def test_concurrent_stops_record_one_end(data_dir, env):
    task = started_ready(STUBBORN, env)
    stoppers = [subprocess.Popen([*GHOST, "stop", "--timeout", "3", task["id"]], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(2)]
    try:
        results = [p.communicate(timeout=60) for p in stoppers]
    finally:
        for p in stoppers:
            p.kill()
    for p, (out, err) in zip(stoppers, results, strict=True):
        assert p.returncode == 0, err
        assert out.decode() == (f"Process {task['id']} ({task['pid']}) has been exited "
                                "(SIGKILL after 3 s)\n")
    assert len(task_events(data_dir, task["id"], EXITED, KILLED)) == 1
    requests = task_events(data_dir, task["id"], STOP_REQUESTED)
    assert [r.data["signal"] for r in requests].count("SIGKILL") == 1
    assert status_json(task["id"], env)["signal"] == "SIGKILL"


def test_stop_with_its_monitor_frozen_records_the_real_end_once(data_dir, env):
    """The monitor cannot record (SIGSTOP): `stop` judges by the process and records the end."""
    task = run_json("sleep", "300", env=env)
    [spawned] = task_events(data_dir, task["id"], SPAWNED)
    monitor = spawned.data["monitor"]["pid"]
    os.kill(monitor, signal.SIGSTOP)
    try:
        before = time.time_ns()
        result = ghost("stop", "--timeout", "1", "--json", task["id"], env=env)
        assert result.returncode == 0, result.stderr
        ended = json.loads(result.stdout)
        assert (ended["status"], ended["signal"]) == ("killed", "SIGTERM")
        requests = task_events(data_dir, task["id"], STOP_REQUESTED)
        assert [r.data["signal"] for r in requests] == ["SIGTERM"]  # no false escalation
        [end] = task_events(data_dir, task["id"], EXITED, KILLED)
        assert before <= end.data["end_ns"] <= time.time_ns()
    finally:
        os.kill(monitor, signal.SIGCONT)
    wait_for(lambda: not pid_alive(monitor), message="the thawed monitor to exit")
    assert len(task_events(data_dir, task["id"], EXITED, KILLED)) == 1  # it recorded nothing
    assert status_json(task["id"], env)["signal"] == "SIGTERM"
