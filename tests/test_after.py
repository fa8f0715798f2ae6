"""`run --after` / `--after-any`: queued at once, started by the log, never run on failure."""

from __future__ import annotations

import json
import os
import signal

from support import ghost, pid_alive, run_json, status_json, text, wait_for

from events.store import Store
from events.types import Event


def task_events(data_dir: str, task_id: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.task_events(task_id) if isinstance(e, Event)]
    finally:
        store.close()


GATE = "while [ ! -e {0} ]; do sleep 0.05; done; exit {1}"  # ends when the test says so


def gated(tmp_path, code: int, env: dict[str, str]) -> tuple[dict, str]:
    flag = str(tmp_path / f"go-{code}")
    return run_json("sh", "-c", GATE.format(flag, code), env=env), flag


def release(flag: str) -> None:
    with open(flag, "w"):
        pass


def test_after_queues_then_starts_when_the_dependency_succeeds(data_dir, env, tmp_path):
    first, flag = gated(tmp_path, 0, env)
    result = ghost("run", "--name", "second", "--after", first["id"], "echo", "second", env=env)
    out, err = text(result)
    assert result.returncode == 0, err
    assert "  PID: -\n" in out
    queued = status_json("second", env)
    assert (queued["status"], queued["pid"], queued["after"]) == ("queued", 0, [first["id"]])
    table = text(ghost("list", env=env))[0]
    assert "queued" in table
    release(flag)
    wait_for(lambda: status_json("second", env)["status"] == "exited", 20)
    assert ghost("log", "second", env=env).stdout == b"second\n"
    kinds = [e.type for e in task_events(data_dir, queued["id"])]
    assert kinds == ["queued", "spawned", "exited"]


def test_a_failed_dependency_means_spawn_failed_with_the_reason(data_dir, env, tmp_path):
    first, flag = gated(tmp_path, 3, env)
    queued = run_json("--after", first["id"], "echo", "never", env=env)
    assert queued["status"] == "queued" and queued["pid"] == 0
    release(flag)

    def failed() -> list[Event]:
        return [e for e in task_events(data_dir, queued["id"]) if e.type == "spawn_failed"]

    [event] = wait_for(failed, 20)
    assert event.data["error"] == f"dependency {first['id']} exited with code 3"
    shown = ghost("status", queued["id"], env=env)
    assert shown.returncode == 1 and b"(it failed to start)" in shown.stderr
    assert not os.path.exists(queued["log_path"])  # it never ran
    history = text(ghost("history", queued["id"], env=env))[0]
    assert "exited with code 3" in history


def test_after_any_starts_on_any_end(data_dir, env, tmp_path):
    first, flag = gated(tmp_path, 3, env)
    other, _ = gated(tmp_path, 0, env)
    queued = run_json("--after-any", f"{first['id']},{other['id']}", "echo", "ran", env=env)
    release(flag)
    wait_for(lambda: status_json(queued["id"], env)["status"] == "exited", 20)
    assert ghost("log", queued["id"], env=env).stdout == b"ran\n"


def test_after_waits_for_every_dependency(data_dir, env, tmp_path):
    a, flag_a = gated(tmp_path, 0, env)
    b, flag_b = gated(tmp_path, 5, env)
    b_ok = run_json("sh", "-c", "exit 0", env=env)
    queued = run_json("--after", f"{a['id']},{b_ok['id']}", "echo", "ran", env=env)
    release(flag_b)  # not a dependency: changes nothing
    assert status_json(queued["id"], env)["status"] == "queued"
    release(flag_a)
    wait_for(lambda: status_json(queued["id"], env)["status"] == "exited", 20)
    assert status_json(b["id"], env)["exit_code"] == 5


def test_stop_cancels_a_queued_task(data_dir, env, tmp_path):
    first, flag = gated(tmp_path, 0, env)
    queued = run_json("--after", first["id"], "echo", "never", env=env)
    monitor = [e for e in task_events(data_dir, queued["id"])][0].data["monitor"]["pid"]
    result = ghost("stop", queued["id"], env=env)
    assert result.returncode == 0, result.stderr
    release(flag)
    wait_for(lambda: not pid_alive(monitor), message="the queue's monitor to exit")
    kinds = [e.type for e in task_events(data_dir, queued["id"])]
    assert kinds == ["queued", "stop_requested", "spawn_failed"]
    listed = json.loads(ghost("list", "--json", env=env).stdout)
    assert queued["id"] not in {t["id"] for t in listed}


def test_cleanup_cancels_a_queued_task(data_dir, env, tmp_path):
    first, flag = gated(tmp_path, 0, env)
    queued = run_json("--after", first["id"], "echo", "never", env=env)
    assert ghost("cleanup", "--all", "-s", "queued", env=env).returncode == 0
    release(flag)
    wait_for(lambda: status_json(first["id"], env)["status"] == "exited", 20)
    kinds = [e.type for e in task_events(data_dir, queued["id"])]
    assert kinds == ["queued", "cleaned"]


def test_after_an_unknown_task_is_refused(data_dir, env):
    run_json("true", env=env)
    result = ghost("run", "--after", "nosuch", "echo", "x", env=env)
    assert result.returncode == 1
    assert text(result)[1].startswith("Error: task nosuch not found")
    both = ghost("run", "--after", "a", "--after-any", "b", "echo", "x", env=env)
    assert both.returncode == 2
    assert text(both)[1] == "Error: use either --after or --after-any, not both\n"


def test_a_queue_whose_monitor_died_is_lost(data_dir, env, tmp_path):
    first, _ = gated(tmp_path, 0, env)
    queued = run_json("--after", first["id"], "echo", "never", env=env)
    monitor = task_events(data_dir, queued["id"])[0].data["monitor"]["pid"]
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(monitor))
    shown = status_json(queued["id"], env)
    assert (shown["status"], shown["reason"]) == ("unknown",
                                                  "its monitor died before the task could start")
