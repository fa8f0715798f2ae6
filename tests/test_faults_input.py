"""Bad input, beyond the basic cases of test_run.py/test_cleanup.py/test_list_status.py:
values argv cannot carry (NUL), bytes that are not UTF-8, arguments past the kernel's limits,
unparsable command lines, and Ctrl+C in every command that waits. Each answer is one
`Error: ...` line naming the value, a documented exit code, and nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess

import pytest
from support import GHOST, ghost, run_json, text, wait_ended, wait_for
from test_faults_crash import all_events, check_invariants, events_of, list_json

from events import types as ev
from ghost.actions.run import MAX_ARG_STRLEN, check_command, parse_env
from ghost.errors import USAGE, GhostError


def one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    out, err = text(result)
    assert result.returncode == code, (out, err)
    assert out == "" and err.startswith("Error: ") and err.count("\n") == 1, (out, err)
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize(("pair", "named"), [
    ("KEY=s3cr3t\0b", "--env KEY: the value contains a NUL byte"),  # argv cannot; MCP can
    ("KEY=s3cr3t\udcff", "--env KEY: the value is not valid UTF-8"),  # a non-UTF-8 argv byte
    ("=s3cr3t", "--env #1: the name before '=' is empty"),  # `-e "$UNSET=$TOKEN"`
    ("s3cr3t", "--env #1: expected KEY=VALUE"),  # `-e "$TOKEN"`
    ("K\udcff=s3cr3t", "--env #1: the name is not valid UTF-8"),
    ("\x1b[2J=s3cr3t\0", "--env #1: the value contains a NUL byte"),  # no plain name: by #
])
def test_parse_env_refuses_naming_the_variable_never_its_value(pair, named):
    with pytest.raises(GhostError) as caught:
        parse_env([pair])
    assert caught.value.exit_code == USAGE and named in caught.value.message
    assert "s3cr3t" not in caught.value.message


def test_parse_env_names_a_refused_pair_by_its_position():
    with pytest.raises(GhostError) as caught:
        parse_env(["A=1", "B=2", "=s3cr3t"])
    assert "--env #3:" in caught.value.message and "s3cr3t" not in caught.value.message


def test_parse_env_keeps_everything_after_the_first_equals_sign():
    assert parse_env(["A=B=C", "EMPTY="]) == {"A": "B=C", "EMPTY": ""}


def test_non_utf8_env_is_refused_and_recorded(data_dir, env):
    result = subprocess.run([*map(os.fsencode, GHOST), b"run", b"--env", b"K=\xff", b"true"],
                            env=env, capture_output=True, timeout=60)
    one_error_line(result, USAGE, "--env K: the value is not valid UTF-8")
    [failed] = [e for e in all_events(data_dir) if e.type == ev.SPAWN_FAILED]
    assert failed.data["exit_code"] == USAGE
    assert "\udcff" not in failed.data["error"] and "\\xff" not in failed.data["error"]
    assert list_json(env) == []


def test_argument_longer_than_the_kernel_allows(data_dir, env):
    # exec() refuses such an argument to ghost itself, so only MCP and the core API can pass one.
    code = ("from ghost.errors import GhostError; from ghost.actions.run import start_one\n"
            f"try: start_one(['echo', 'x' * {MAX_ARG_STRLEN}], '/', {{}}, via='mcp')\n"
            "except GhostError as e: print(e.exit_code, e.message[-60:])")
    result = subprocess.run([GHOST[0], "-c", code], env=env, capture_output=True, timeout=60)
    assert result.stdout.decode().startswith(f"{USAGE} ") and \
        f"the limit for one argument is {MAX_ARG_STRLEN - 1}" in result.stdout.decode(), result
    [failed] = [e for e in all_events(data_dir) if e.type == ev.SPAWN_FAILED]
    assert max(len(a) for a in failed.data["command"]) <= 1027  # clipped: the log stays small
    assert list_json(env) == []


def test_argument_list_longer_than_arg_max():
    limit = os.sysconf("SC_ARG_MAX")
    many = ["y" * (MAX_ARG_STRLEN // 2)] * (limit // (MAX_ARG_STRLEN // 2) + 1)
    with pytest.raises(GhostError) as caught:
        check_command(["echo", *many])
    assert caught.value.exit_code == USAGE
    assert "argument list too long" in caught.value.message and str(limit) in caught.value.message


def test_unparsable_command_line_names_it(data_dir, env):
    one_error_line(ghost("run", "echo 'unterminated", env=env), USAGE,
                   "Unclosed quote in command string: \"echo 'unterminated\"")
    assert list_json(env) == []


def test_non_utf8_argument_reaches_the_task_byte_exact(data_dir, env):
    argv = [*map(os.fsencode, GHOST), b"run", b"--json", b"printf", b"%s|", b"\xff\xfe-raw", b"ok"]
    result = subprocess.run(argv, env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)  # valid UTF-8 JSON: undecodable bytes shown as U+FFFD
    assert started["command"] == ["printf", "%s|", "\ufffd\ufffd-raw", "ok"]
    wait_ended(started["id"], env)
    assert ghost("log", started["id"], env=env).stdout == b"\xff\xfe-raw|ok|"
    for args in (("list",), ("list", "--json"), ("status", started["id"]),
                 ("status", "--json", started["id"])):
        shown = ghost(*args, env=env)
        assert shown.returncode == 0 and shown.stderr == b"", (args, shown.stderr)
        shown.stdout.decode("utf-8")  # strict: always valid UTF-8
        # U+FFFD for JSON and for a person alike (ghost.text.printable / escape)
        assert "\ufffd\ufffd-raw".encode() in shown.stdout, (args, shown.stdout)
    [spawned] = events_of(data_dir, started["id"], ev.SPAWNED)
    assert os.fsencode(spawned.data["command"][2]) == b"\xff\xfe-raw"  # the log keeps the bytes
    assert ghost("doctor", env=env).returncode == 0


# -- Ctrl+C --------------------------------------------------------------------------------


def watching(pid: int) -> bool:
    """True once the process waits on inotify (the event log's wake file or a log file)."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:inotify"
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def stop_requested(data_dir: str, task: str) -> bool:
    return bool(events_of(data_dir, task, ev.STOP_REQUESTED))


@pytest.mark.parametrize("command", ["stop", "log -f", "wait", "list --watch"])
def test_ctrl_c_in_a_waiting_command_exits_130_without_a_traceback(command, data_dir, env):
    task = run_json("sh", "-c", "trap '' TERM; echo ready; sleep 60", env=env)
    args = {"stop": ["stop", "--timeout", "60", task["id"]], "log -f": ["log", "-f", task["id"]],
            "wait": ["wait", task["id"]], "list --watch": ["list", "--watch"]}[command]
    waiter = subprocess.Popen([*GHOST, *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        if command == "stop":  # interrupted during its grace period
            wait_for(lambda: stop_requested(data_dir, task["id"]), message="the stop request")
        else:
            wait_for(lambda: watching(waiter.pid), message=f"`ghost {command}` to wait")
        waiter.send_signal(signal.SIGINT)
        out, err = waiter.communicate(timeout=30)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.wait()
    assert waiter.returncode == 130, (out, err)
    assert b"Traceback" not in err and err.strip() == b"", err
    if command == "log -f":
        assert out == b"ready\n"
    assert list_json(env)[0]["status"] == "running"  # Ctrl+C of a reader never ends the task
    assert check_invariants(data_dir) == []


def test_nothing_is_half_written_by_refused_input(data_dir, env):
    for args in (("run", "--cwd", "/nonexistent/dir", "true"), ("run", "--env", "X", "true"),
                 ("stop", "zzzz"), ("cleanup", "--days", "-1"), ("list", "--status", "nope")):
        assert ghost(*args, env=env).returncode != 0
    events = all_events(data_dir)
    assert {e.type for e in events} <= {ev.SPAWN_FAILED}
    assert check_invariants(data_dir) == []
