"""`ghost run`: the start block, JSON, the multi-command form, cwd/env, a clean task environment,
and every kind of bad input (exit code, one `Error:` line, a `spawn_failed` record, no task)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys

import pytest
from support import GHOST, ghost, pid_alive, run_json, text, wait_ended

from events.store import Store
from events.types import SPAWN_FAILED, Event

UUID4 = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
BLOCK = re.compile(
    rf"Started background process:\n  Task ID: ({UUID4})\n  PID: (\d+)\n  Log file: (/\S+)\n")
JSON_KEYS = {"id", "pid", "status", "command", "cwd", "started_at", "finished_at", "exit_code",
             "signal", "log_path"}


def recorded(data_dir: str, event_type: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    if store is None:
        return []
    try:
        return [e for e in store.scan() if isinstance(e, Event) and e.type == event_type]
    finally:
        store.close()


def listed(env: dict[str, str]) -> list[dict]:
    result = ghost("list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def log_bytes(task: dict) -> bytes:
    with open(task["log_path"], "rb") as f:
        return f.read()


def finished_log(task_id: str, env: dict[str, str]) -> str:
    ended = wait_ended(task_id, env)
    assert ended["status"] == "exited" and ended["exit_code"] == 0, ended
    return log_bytes(ended).decode()


def test_start_block_is_exact(data_dir, env):
    result = ghost("run", "sleep", "30", env=env)
    out, err = text(result)
    assert result.returncode == 0, err
    match = BLOCK.fullmatch(out)
    assert match, out
    task_id, pid, log = match.group(1), int(match.group(2)), match.group(3)
    assert log == os.path.join(data_dir, "logs", f"{task_id}.log")
    assert pid_alive(pid)
    assert stat.S_IMODE(os.stat(log).st_mode) == 0o600
    [row] = listed(env)
    assert (row["id"], row["pid"], row["status"]) == (task_id, pid, "running")


def test_json_has_the_documented_keys(data_dir, env):
    started = run_json("sleep", "30", env=env)
    assert started.keys() >= JSON_KEYS
    assert started["status"] == "running"
    assert started["command"] == ["sleep", "30"]
    assert started["cwd"] == os.getcwd()
    assert re.fullmatch(UUID4, started["id"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                        started["started_at"])
    assert started["finished_at"] is None and started["exit_code"] is None
    assert started["signal"] is None


def test_multi_command_form_applies_cwd_and_env_to_all(data_dir, env, tmp_path):
    work = tmp_path / "work dir"
    work.mkdir()
    result = ghost("run", "--cwd", str(work), "--env", "GREETING=hi there",
                   "sh -c 'pwd; echo first $GREETING'", "sh -c 'pwd; echo second $GREETING'",
                   env=env)
    out, err = text(result)
    assert result.returncode == 0, err
    blocks = BLOCK.findall(out)
    assert len(blocks) == 2 and blocks[0][0] != blocks[1][0], out
    assert BLOCK.sub("", out) == ""
    for (task_id, _, _), word in zip(blocks, ("first", "second"), strict=True):
        assert finished_log(task_id, env) == f"{work}\n{word} hi there\n"
    rows = listed(env)
    assert {r["id"] for r in rows} == {b[0] for b in blocks}
    assert all(r["command"][:2] == ["sh", "-c"] for r in rows)


def test_cwd_and_env_and_inherited_environment(data_dir, env, tmp_path):
    env = {**env, "GHOST_TEST_INHERITED": "from caller"}
    started = run_json("--cwd", str(tmp_path), "-e", "A=B=C", "-e", "EMPTY=",
                       "sh", "-c", 'pwd; echo "$A|$EMPTY|${EMPTY+set}|$GHOST_TEST_INHERITED"',
                       env=env)
    assert started["cwd"] == str(tmp_path)
    assert finished_log(started["id"], env) == f"{tmp_path}\nB=C||set|from caller\n"


def test_relative_cwd_is_made_absolute(data_dir, env, tmp_path):
    (tmp_path / "sub").mkdir()
    result = subprocess.run([*GHOST, "run", "--json", "-c", "sub", "pwd"], env=env,
                            cwd=tmp_path, capture_output=True)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert started["cwd"] == str(tmp_path / "sub")
    assert finished_log(started["id"], env) == f"{tmp_path / 'sub'}\n"


def test_environment_values_are_not_recorded(data_dir, env):
    started = run_json("-e", "SECRET_TOKEN=hunter2-value", "true", env=env)
    wait_ended(started["id"], env)
    with open(os.path.join(data_dir, "store", "data.mdb"), "rb") as f:
        assert b"hunter2-value" not in f.read()


def test_task_starts_with_default_signals_and_null_stdin(data_dir, env):
    # A non-interactive shell starts `&` jobs with SIGINT and SIGQUIT ignored; the task must not
    # inherit that, or Ctrl+C-style stops and `kill -INT` would silently do nothing.
    script = f"{' '.join(map(repr, GHOST))} run --json sleep 30 & wait"
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, timeout=60)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    with open(f"/proc/{started['pid']}/status") as f:
        status = dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)
    ignored = int(status["SigIgn"], 16)
    for signum in (2, 3, 15, 1):  # INT, QUIT, TERM, HUP
        assert not ignored & (1 << (signum - 1)), f"signal {signum} ignored: {status['SigIgn']}"
    assert int(status["SigBlk"], 16) == 0
    assert os.readlink(f"/proc/{started['pid']}/fd/0") == "/dev/null"
    assert os.readlink(f"/proc/{started['pid']}/fd/1") == started["log_path"]


def test_stdout_and_stderr_both_reach_the_log_and_stdin_is_empty(data_dir, env):
    started = run_json("sh", "-c", "echo out; echo err >&2; cat; echo after-cat", env=env)
    assert finished_log(started["id"], env) == "out\nerr\nafter-cat\n"


def _script(path, body: str, mode: int) -> str:
    path.write_text(body)
    path.chmod(mode)
    return str(path)


BAD_INPUTS = {
    "not found": (lambda tmp: ["no-such-command-xyz"], 127, "no-such-command-xyz"),
    "missing path": (lambda tmp: [str(tmp / "missing.sh")], 127, "missing.sh"),
    "not executable": (lambda tmp: [_script(tmp / "plain.sh", "#!/bin/sh\necho\n", 0o644)],
                       126, "plain.sh"),
    "directory": (lambda tmp: [str(tmp)], 126, None),  # None: the directory's own path
    "no shebang": (lambda tmp: [_script(tmp / "noshebang", "\x7fELFgarbage\n", 0o755)],
                   126, "noshebang"),
    "missing cwd": (lambda tmp: ["--cwd", str(tmp / "nowhere"), "true"], 2, "nowhere"),
    "cwd is a file": (lambda tmp: ["--cwd", _script(tmp / "afile", "x", 0o644), "true"],
                      2, "afile"),
    "env without =": (lambda tmp: ["--env", "JUSTANAME", "true"], 2, "--env #1: expected"),
    "empty command": (lambda tmp: [], 2, "command"),
    "empty string command": (lambda tmp: [""], 2, "command"),
    "blank command line": (lambda tmp: ["   ", "true"], 2, "command"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input(case, data_dir, env, tmp_path):
    make_args, code, named = BAD_INPUTS[case]
    args = make_args(tmp_path)
    named = named or str(tmp_path)
    result = ghost("run", *args, env=env)
    out, err = text(result)
    assert result.returncode == code, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), err
    assert named in lines[0], lines[0]
    failures = recorded(data_dir, SPAWN_FAILED)
    assert len(failures) == 1, failures
    assert failures[0].data["exit_code"] == code
    assert failures[0].data["error"] in lines[0]
    assert [r for r in listed(env) if r["status"] == "running"] == []


def test_no_shebang_script_leaves_no_process(data_dir, env, tmp_path):
    script = _script(tmp_path / "noshebang", "echo would-run-under-sh\n", 0o755)
    result = ghost("run", script, env=env)
    assert result.returncode == 126, result.stderr
    assert listed(env) == []
    [failure] = recorded(data_dir, SPAWN_FAILED)
    assert failure.data["command"] == [script]


def test_multi_command_stops_at_the_first_failure(data_dir, env):
    result = ghost("run", "sh -c 'sleep 30'", "no-such-command-xyz now", "echo never", env=env)
    out, err = text(result)
    assert result.returncode == 127
    assert len(BLOCK.findall(out)) == 1
    assert err.startswith("Error: ") and "no-such-command-xyz" in err
    assert [r["command"] for r in listed(env)] == [["sh", "-c", "sleep 30"]]


def test_run_is_importable_without_heavy_modules():
    code = ("import sys, ghost.cli.main, ghost.actions.run, ghost.process.monitor, "
            "ghost.cli.render;"
            "bad = {'watchfiles', 'tabulate', 'mcp', 'hypothesis'} & set(sys.modules);"
            "print(sorted(bad))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr



def test_deleted_current_directory_is_a_usage_error(data_dir, env, tmp_path):
    gone = tmp_path / "gone"
    gone.mkdir()
    script = f"cd {gone} && rmdir {gone} && exec {' '.join(map(repr, GHOST))} run true"
    result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, timeout=60)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert len(err.splitlines()) == 1 and "current directory no longer exists" in err
    assert len(recorded(data_dir, SPAWN_FAILED)) == 1
    assert listed(env) == []
