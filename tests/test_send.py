"""`ghost run --stdin` and `ghost send`: text, -n, --file, -, --eof; refusals; whole writes from
concurrent senders; the content never recorded (real processes, real store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from support import GHOST, ghost, run_json, status_json, text, wait_ended, wait_for

PY = sys.executable
ECHO = "import sys\nfor line in sys.stdin: print('got', repr(line), flush=True)\nprint('eof')"


def log_of(task_id: str, env: dict[str, str]) -> bytes:
    return ghost("log", task_id, env=env).stdout


def test_send_text_n_file_stdin_and_eof(env, tmp_path):
    task = run_json("--stdin", PY, "-c", ECHO, env=env)
    ident = task["id"]
    assert ghost("send", ident, "hello", "world", env=env).returncode == 0
    assert ghost("send", ident, "-n", "par", env=env).returncode == 0
    assert ghost("send", ident, "tial", env=env).returncode == 0
    data = tmp_path / "input.txt"
    data.write_bytes(b"from a file\n")
    assert ghost("send", ident, "--file", str(data), env=env).returncode == 0
    assert ghost("send", ident, "-", input=b"from stdin\n", env=env).returncode == 0
    assert ghost("send", ident, "--eof", env=env).returncode == 0
    assert wait_ended(ident, env)["exit_code"] == 0
    assert log_of(ident, env) == (b"got 'hello world\\n'\ngot 'partial\\n'\n"
                                  b"got 'from a file\\n'\ngot 'from stdin\\n'\neof\n")


def test_a_task_without_input_is_refused(env):
    task = run_json("sleep", "30", env=env)
    result = ghost("send", task["id"], "y", env=env)
    assert result.returncode == 1
    assert text(result) == ("", f"Error: task {task['id']} takes no input (start it with --pty "
                                "or --stdin)\n")
    ghost("kill", task["id"], env=env)


def test_sending_to_an_ended_task(env):
    task = run_json("--stdin", "true", env=env)
    wait_ended(task["id"], env)
    result = ghost("send", task["id"], "y", env=env)
    assert result.returncode == 1
    _, err = text(result)
    assert err == f"Error: task {task['id']} has ended (exited with code 0); it takes no input\n"


def test_a_task_that_closed_its_stdin(env):
    code = "import os, time; os.close(0); print('closed', flush=True); time.sleep(30)"
    task = run_json("--stdin", PY, "-c", code, env=env)
    wait_for(lambda: b"closed" in log_of(task["id"], env), message="the task to close stdin")
    result = ghost("send", task["id"], "y", env=env)
    assert result.returncode == 1
    _, err = text(result)
    assert err.startswith(f"Error: cannot send to task {task['id']}: the task's input is closed")
    assert err.count("\n") == 1
    ghost("kill", task["id"], env=env)


def test_two_concurrent_senders_arrive_whole(env):
    code = "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data)"
    task = run_json("--stdin", PY, "-c", code, env=env)
    payloads = {ch: ch * 4095 for ch in "ab"}  # plus the newline: 4 KiB each
    for _ in range(5):
        procs = [subprocess.Popen([*GHOST, "send", task["id"], p], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for p in payloads.values()]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
    assert ghost("send", task["id"], "--eof", env=env).returncode == 0
    wait_ended(task["id"], env)
    lines = log_of(task["id"], env).split(b"\n")
    assert lines.pop() == b""
    assert sorted(lines) == sorted([p.encode() for p in payloads.values()] * 5)


def test_the_content_is_never_recorded(env):
    task = run_json("--stdin", "cat", env=env)
    secret = "s3cr3t-token-value"
    assert ghost("send", task["id"], secret, env=env).returncode == 0
    assert ghost("send", task["id"], "--eof", env=env).returncode == 0
    wait_ended(task["id"], env)
    exported = ghost("events", env=env).stdout.decode()
    assert secret not in exported
    sent = [e for e in map(json.loads, exported.splitlines()) if e["type"] == "input_sent"]
    assert [(e["bytes"], e["eof"], e["actor"]["via"]) for e in sent] == \
        [(len(secret) + 1, False, "cli"), (0, True, "cli")]
    store = os.path.join(env["GHOST_DATA_DIR"], "store", "data.mdb")
    with open(store, "rb") as f:
        assert secret.encode() not in f.read()


def test_bad_send_arguments(env):
    task = run_json("--stdin", "sleep", "30", env=env)
    result = ghost("send", task["id"], env=env)
    assert result.returncode == 2
    assert text(result)[1] == "Error: nothing to send: give TEXT, -, --file FILE or --eof\n"
    result = ghost("send", task["id"], "--file", "/nonexistent/x", env=env)
    assert result.returncode == 2
    assert text(result)[1].startswith("Error: cannot read /nonexistent/x:")
    assert status_json(task["id"], env)["status"] == "running"
    ghost("kill", task["id"], env=env)


def test_run_option_errors(env):
    for args, message in [
        (("--cols", "100", "sleep", "1"), "--cols and --rows need --pty"),
        (("--log-keep", "2", "sleep", "1"), "--log-keep needs --log-max"),
        (("--log-max", "lots", "sleep", "1"),
         "invalid --log-max 'lots': expected a size like 10M or 1G"),
        (("--pty", "--stdin", "sleep", "1"), "--pty already gives the task an input; drop --stdin"),
    ]:
        result = ghost("run", *args, env=env)
        assert result.returncode == 2, args
        assert text(result) == ("", f"Error: {message}\n")
