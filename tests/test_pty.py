"""`ghost run --pty`: the task runs on a terminal the monitor owns; `send` and `resize` reach it
(real ghost processes, real PTYs, a real store in a temporary data dir)."""

from __future__ import annotations

import json
import os
import signal
import sys

from support import ghost, run_json, status_json, text, wait_ended, wait_for

PY = sys.executable


def log_of(task_id: str, env: dict[str, str]) -> bytes:
    result = ghost("log", task_id, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def events_of(task_id: str, env: dict[str, str]) -> list[dict]:
    result = ghost("events", env=env)
    assert result.returncode == 0, result.stderr
    return [e for e in map(json.loads, result.stdout.splitlines()) if e.get("task") == task_id]


def test_a_pty_task_sees_a_terminal(env):
    code = ("import os, sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty(),"
            " os.environ.get('TERM'), os.get_terminal_size().columns)")
    env = {k: v for k, v in env.items() if k != "TERM"}  # set unless the caller has one
    task = run_json("--pty", "--cols", "120", "--rows", "40", PY, "-c", code, env=env)
    assert wait_ended(task["id"], env)["exit_code"] == 0
    assert log_of(task["id"], env) == b"True True True xterm-256color 120\r\n"
    spawned = [e for e in events_of(task["id"], env) if e["type"] == "spawned"][0]
    assert (spawned["input"], spawned["cols"], spawned["rows"], spawned["indexed"]) == \
        ("pty", 120, 40, True)


def test_without_options_nothing_changes(env):
    code = "import sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stdin.read() == '')"
    task = run_json(PY, "-c", code, env=env)
    wait_ended(task["id"], env)
    assert log_of(task["id"], env) == b"False False True\n"
    data_dir = env["GHOST_DATA_DIR"]
    assert os.listdir(os.path.join(data_dir, "logs")) == [f"{task['id']}.log"]  # no index
    spawned = [e for e in events_of(task["id"], env) if e["type"] == "spawned"][0]
    assert "input" not in spawned


def test_send_answers_a_read_prompt(env):
    task = run_json("--pty", "bash", "-c", 'read -p "Port 3000 is in use, use 3001? (y/n) " a;'
                    ' echo "answer=$a"', env=env)
    wait_for(lambda: b"(y/n)" in log_of(task["id"], env), message="the prompt")
    result = ghost("send", task["id"], "y", env=env)
    assert result.returncode == 0, result.stderr
    assert wait_ended(task["id"], env)["exit_code"] == 0
    assert b"answer=y\r\n" in log_of(task["id"], env)


def test_send_drives_python_interactive(env):
    task = run_json("--pty", PY, "-i", "-q", env=env)
    wait_for(lambda: b">>> " in log_of(task["id"], env), message="the python prompt")
    assert ghost("send", task["id"], "print(6 * 7)", env=env).returncode == 0
    wait_for(lambda: b"42\r\n" in log_of(task["id"], env), message="the answer")
    assert ghost("send", task["id"], "--eof", env=env).returncode == 0  # ^D ends the REPL
    assert wait_ended(task["id"], env)["exit_code"] == 0


def test_resize_is_seen_by_tput_and_sigwinch(env):
    script = ('trap \'echo "winch $(tput cols)x$(tput lines)"\' WINCH; echo "start $(tput cols)";'
              ' while true; do sleep 0.05; done')
    task = run_json("--pty", "--cols", "100", "--rows", "30", "bash", "-c", script, env=env)
    wait_for(lambda: b"start 100" in log_of(task["id"], env), message="the start")
    result = ghost("resize", task["id"], "132", "43", env=env)
    assert result.returncode == 0, result.stderr
    wait_for(lambda: b"winch 132x43" in log_of(task["id"], env), message="SIGWINCH")
    assert status_json(task["id"], env)["io"]["cols"] == 132
    resized = [e for e in events_of(task["id"], env) if e["type"] == "resized"]
    assert [(e["cols"], e["rows"], e["actor"]["via"]) for e in resized] == [(132, 43, "cli")]
    assert ghost("kill", task["id"], env=env).returncode == 0


def test_resize_refuses_a_task_without_a_terminal(env):
    task = run_json("--stdin", "sleep", "30", env=env)
    result = ghost("resize", task["id"], "80", "24", env=env)
    assert result.returncode == 1
    assert text(result)[1] == f"Error: task {task['id']} has no terminal (start it with --pty)\n"
    ghost("kill", task["id"], env=env)


def test_the_status_shows_the_terminal(env):
    task = run_json("--pty", "--cols", "90", "--rows", "20", "sleep", "30", env=env)
    out, _ = text(ghost("status", task["id"], env=env))
    assert "Input: terminal 90x20 (ghost send/attach)" in out
    ghost("kill", task["id"], env=env)


def test_stop_ends_a_pty_task_and_its_monitor(env):
    task = run_json("--pty", "bash", "-c", "sleep 60 & wait", env=env)
    result = ghost("stop", task["id"], env=env)
    assert result.returncode == 0, result.stderr
    assert status_json(task["id"], env)["status"] in ("killed", "exited")
    assert not os.path.exists(os.path.join(env["GHOST_DATA_DIR"], "run", f"{task['id']}.sock"))


def test_the_monitor_killed_during_a_pump_gives_lost(env):
    task = run_json("--pty", "sleep", "60", env=env)
    events = events_of(task["id"], env)
    monitor = [e for e in events if e["type"] == "spawned"][0]["monitor"]["pid"]
    os.kill(monitor, signal.SIGKILL)
    # The terminal hangs up with its owner gone: the task gets SIGHUP, its end is not observed.
    data = wait_for(lambda: (lambda s: s if s["status"] != "running" else None)(
        status_json(task["id"], env)), timeout=20, message="the task to be reconciled")
    assert data["status"] == "unknown"
