"""`ghost restart` by hand and restart policies: attempts, logs, env values, stop wins, lost."""

from __future__ import annotations

import json
import os
import signal
import stat

from support import ghost, pid_alive, run_json, status_json, text, wait_ended, wait_for

from events.store import Store
from events.types import Event


def task_events(data_dir: str, task_id: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.task_events(task_id) if isinstance(e, Event)]
    finally:
        store.close()


def kinds(data_dir: str, task_id: str) -> list[str]:
    return [e.type for e in task_events(data_dir, task_id)]


def log_has(path: str, data: bytes) -> bool:
    with open(path, "rb") as f:
        return f.read() == data


def test_restart_keeps_id_and_name_and_appends_the_log(data_dir, env):
    task = run_json("--name", "web", "-e", "SECRET=s3cr3t-value", "sh", "-c",
                    'echo "run $SECRET"; sleep 300', env=env)
    wait_for(lambda: log_has(task["log_path"], b"run s3cr3t-value\n"))
    result = ghost("restart", "web", "--json", env=env)
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert (again["id"], again["name"]) == (task["id"], "web")
    assert again["pid"] != task["pid"] and not pid_alive(task["pid"])
    wait_for(lambda: log_has(task["log_path"], b"run s3cr3t-value\n" * 2))
    shown = status_json("web", env)
    assert (shown["status"], shown["attempt"], shown["restarts"]) == ("running", 2, 1)
    assert ghost("log", "--attempt", "1", "web", env=env).stdout == b"run s3cr3t-value\n"
    assert ghost("log", "--attempt", "2", "web", env=env).stdout == b"run s3cr3t-value\n"
    assert ghost("log", "web", env=env).stdout == b"run s3cr3t-value\n" * 2
    missing = ghost("log", "--attempt", "3", "web", env=env)
    assert missing.returncode == 1 and b"has no attempt 3" in missing.stderr
    assert "Attempts: 2" in text(ghost("status", "web", env=env))[0]
    # the value is kept for restarts, but never in the log, the export or the history
    spawned = [e for e in task_events(data_dir, task["id"]) if e.type == "spawned"]
    assert [e.get("attempt", 1) for e in spawned] == [1, 2]
    assert spawned[1].data["log_offset"] == len(b"run s3cr3t-value\n")
    for args in (["events"], ["history", "web", "--json"], ["history"]):
        assert b"s3cr3t" not in ghost(*args, env=env).stdout
    spec = os.path.join(data_dir, "specs", f"{task['id']}.json")
    assert stat.S_IMODE(os.stat(spec).st_mode) == 0o600


def test_restart_of_an_ended_task_starts_it_again(data_dir, env):
    task = run_json("sh", "-c", "echo once", env=env)
    wait_ended(task["id"], env)
    result = ghost("restart", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    assert f"Task ID: {task['id']}" in text(result)[0]
    wait_for(lambda: status_json(task["id"], env)["status"] == "exited"
             and status_json(task["id"], env)["attempt"] == 2)
    assert ghost("log", task["id"], env=env).stdout == b"once\nonce\n"
    assert kinds(data_dir, task["id"]) == ["spawned", "exited", "restart_requested", "spawned",
                                           "exited"]


def test_restart_g_restarts_the_group(data_dir, env):
    tasks = [run_json("-g", "api", "sleep", "300", env=env) for _ in range(2)]
    result = ghost("restart", "-g", "api", env=env)
    assert result.returncode == 0, result.stderr
    assert len(text(result)[0].splitlines()) == 2
    for task in tasks:
        now = status_json(task["id"], env)
        assert (now["status"], now["attempt"]) == ("running", 2)


def test_restart_of_an_unknown_task_fails(data_dir, env):
    run_json("true", env=env)
    result = ghost("restart", "nosuchname", env=env)
    assert result.returncode == 1
    assert text(result)[1].startswith("Error: task nosuchname not found")


def test_on_failure_restarts_with_backoff_then_gives_up(data_dir, env):
    task = run_json("--restart", "on-failure", "--max-restarts", "2", "--restart-delay",
                    "20ms", "sh", "-c", "echo try; exit 3", env=env)
    wait_for(lambda: "gave_up" in kinds(data_dir, task["id"]), 30)
    events = task_events(data_dir, task["id"])
    assert [e.type for e in events] == ["spawned", "exited", "restart_scheduled", "spawned",
                                        "exited", "restart_scheduled", "spawned", "exited",
                                        "gave_up"]
    delays = [e.data["delay_ms"] for e in events if e.type == "restart_scheduled"]
    assert delays == [20, 40]  # doubled: the attempt ended within --min-uptime
    assert [e.data["attempt"] for e in events if e.type == "restart_scheduled"] == [2, 3]
    shown = status_json(task["id"], env)
    assert (shown["status"], shown["exit_code"], shown["attempt"]) == ("exited", 3, 3)
    assert shown["gave_up_after"] == 2 and shown["policy"]["restart"] == "on-failure"
    assert "exited (3), gave up after 2 restarts" in text(ghost("status", task["id"],
                                                               env=env))[0]
    assert ghost("log", task["id"], env=env).stdout == b"try\n" * 3


def test_on_failure_does_not_restart_a_success(data_dir, env):
    task = run_json("--restart", "on-failure", "true", env=env)
    wait_ended(task["id"], env)
    wait_for(lambda: kinds(data_dir, task["id"]) == ["spawned", "exited"])
    assert status_json(task["id"], env)["attempt"] == 1


def test_stop_during_backoff_wins(data_dir, env):
    task = run_json("--restart", "always", "--restart-delay", "60s", "sh", "-c", "exit 1",
                    env=env)
    wait_for(lambda: status_json(task["id"], env)["status"] == "restarting", 20)
    shown = status_json(task["id"], env)
    assert shown["next_restart_at"] and shown["restart_reason"] == "exited with code 1"
    monitor = [e for e in task_events(data_dir, task["id"])
               if e.type == "restart_scheduled"][0].data["monitor"]["pid"]
    result = ghost("stop", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    shown = status_json(task["id"], env)
    assert (shown["status"], shown["exit_code"]) == ("exited", 1)
    wait_for(lambda: not pid_alive(monitor), 10, message="the monitor to give up the restart")
    assert kinds(data_dir, task["id"]).count("spawned") == 1


def test_a_monitor_killed_during_backoff_is_lost_not_restarting_forever(data_dir, env):
    task = run_json("--restart", "always", "--restart-delay", "60s", "sh", "-c", "exit 1",
                    env=env)
    wait_for(lambda: status_json(task["id"], env)["status"] == "restarting", 20)
    scheduled = [e for e in task_events(data_dir, task["id"])
                 if e.type == "restart_scheduled"][0]
    os.kill(scheduled.data["monitor"]["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(scheduled.data["monitor"]["pid"]))
    shown = status_json(task["id"], env)
    assert shown["status"] == "unknown"
    assert shown["reason"] == "its monitor died while waiting to restart it"


def test_cleanup_deletes_the_launch_spec(data_dir, env):
    task = run_json("-e", "TOKEN=x", "true", env=env)
    wait_ended(task["id"], env)
    spec = os.path.join(data_dir, "specs", f"{task['id']}.json")
    assert os.path.exists(spec)
    assert ghost("cleanup", "--all", env=env).returncode == 0
    assert not os.path.exists(spec)


def test_policy_flags_are_validated(data_dir, env):
    cases = [
        (["--max-restarts", "3"], "Error: --max-restarts needs --restart on-failure, always "
                                  "or unless-stopped\n"),
        (["--restart", "sometimes"], None),
        (["--restart", "always", "--restart-delay", "soon"],
         "Error: invalid --restart-delay 'soon': expected a duration such as 100ms, 2s or "
         "1m\n"),
        (["--restart", "always", "--max-restarts", "-1"],
         "Error: invalid --max-restarts -1: must be 0 or more\n"),
    ]
    for flags, message in cases:
        result = ghost("run", *flags, "true", env=env)
        assert result.returncode == 2, flags
        err = text(result)[1]
        assert err.count("\n") == 1 and err.startswith("Error: ")
        if message:
            assert err == message


def test_log_attempt_finds_each_attempt_across_log_rotation(data_dir, env):
    """--log-max rotates the log between and within attempts: attempt offsets are logical."""
    script = ('i=0; while [ $i -lt 30 ]; do echo "try $i of an attempt long enough to rotate"; '
              'i=$((i+1)); done; exit 1')
    task = run_json("--log-max", "1K", "--log-keep", "20", "--restart", "on-failure",
                    "--max-restarts", "2", "--restart-delay", "0", "sh", "-c", script, env=env)
    wait_for(lambda: "gave_up" in kinds(data_dir, task["id"]), 30)
    logs = os.listdir(os.path.join(data_dir, "logs"))
    assert f"{task['id']}.log.2" in logs  # it did rotate
    one = b"".join(f"try {i} of an attempt long enough to rotate\n".encode() for i in range(30))
    for attempt in ("1", "2", "3"):
        shown = ghost("log", "--attempt", attempt, task["id"], env=env)
        assert shown.returncode == 0 and shown.stdout == one, text(shown)
    last = ghost("log", "--attempt", "3", "--tail", "2", task["id"], env=env).stdout
    assert last == one.split(b"\n", 28)[-1]
    assert ghost("log", task["id"], env=env).stdout == one * 3
