"""`ghost list`, `ghost status` and `ghost log`: what users and scripts read about their tasks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid

import pytest
from support import GHOST, ghost, run_json, status_json, text, wait_ended

from events.store import Store
from events.types import SPAWNED, make
from projections.checkpoint import VIEWS

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
JSON_KEYS = {"id", "pid", "status", "command", "cwd", "started_at", "finished_at", "exit_code",
             "signal", "log_path"}
STATUS_PREFIXES = ("Task: ", "PID: ", "Status: ", "Command: ", "Working directory: ",
                   "Started: ", "Finished: ")


def listed(env: dict[str, str], *args: str) -> list[dict]:
    result = ghost("list", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def status_text(task_id: str, env: dict[str, str]) -> list[str]:
    result = ghost("status", task_id, env=env)
    assert result.returncode == 0, result.stderr
    return text(result)[0].splitlines()


def assert_status_lines(lines: list[str], task: dict, last_line: str) -> None:
    """The documented lines, in order; extra lines (duration, stop request) may sit between."""
    wanted = [*STATUS_PREFIXES, last_line, "Log file: "]
    found = [next((i for i, line in enumerate(lines) if line.startswith(w)), -1) for w in wanted]
    assert -1 not in found and found == sorted(found), lines
    assert lines[0] == f"Task: {task['id']}"
    assert lines[1] == f"PID: {task['pid']}"
    assert lines[-1] == f"Log file: {task['log_path']}"


def test_empty_and_missing_data_dir(data_dir, env, tmp_path):
    result = ghost("list", env=env)
    assert (result.returncode, text(result)) == (0, ("No tasks found.\n", ""))
    assert not os.path.exists(data_dir), "a read must not create the data dir"
    assert listed(env) == []
    missing = ghost("status", "0123456789ab", env=env)
    assert missing.returncode == 1
    assert text(missing)[1] == "Error: task 0123456789ab not found\n"
    assert not os.path.exists(data_dir)


def test_table_header_full_ids_and_newest_first(data_dir, env, tmp_path):
    first = run_json("sleep", "30", env=env)
    second = run_json("--cwd", str(tmp_path), "sh", "-c", "exit 0", env=env)
    wait_ended(second["id"], env)
    result = ghost("list", env=env)
    out, err = text(result)
    assert result.returncode == 0 and err == ""
    lines = out.splitlines()
    header = lines[0].split()
    for column in ("Task", "ID", "PID", "Status", "Started", "Command", "Directory"):
        assert column in header
    assert re.findall(r"Task ID|PID|Status|Started|Command|Directory", lines[0]) == [
        "Task ID", "PID", "Status", "Started", "Command", "Directory"]
    assert set(lines[1]) == {"-"}
    assert len(lines) == 4
    assert lines[2].split()[:3] == [second["id"], str(second["pid"]), "exited"]
    assert lines[3].split()[:3] == [first["id"], str(first["pid"]), "running"]
    assert lines[2].rstrip().endswith(str(tmp_path)) and "sh -c 'exit 0'" in lines[2]
    assert [t["id"] for t in listed(env)] == [second["id"], first["id"]]


def test_status_filter_and_json(data_dir, env):
    running = run_json("sleep", "30", env=env)
    done = run_json("sh", "-c", "exit 3", env=env)
    wait_ended(done["id"], env)
    assert [t["id"] for t in listed(env, "--status", "running")] == [running["id"]]
    assert [t["id"] for t in listed(env, "-s", "exited")] == [done["id"]]
    assert listed(env, "-s", "killed") == [] and listed(env, "-s", "unknown") == []
    assert text(ghost("list", "-s", "killed", env=env))[0] == "No tasks found.\n"
    table = text(ghost("list", "-s", "running", env=env))[0]
    assert running["id"] in table and done["id"] not in table
    rows = listed(env, "--status", "all")
    assert len(rows) == 2
    for row in rows:
        assert row.keys() >= JSON_KEYS
        assert RFC3339.fullmatch(row["started_at"])
        assert isinstance(row["command"], list)
    [ended] = [r for r in rows if r["id"] == done["id"]]
    assert RFC3339.fullmatch(ended["finished_at"]) and ended["exit_code"] == 3
    assert ended["finished_at"] >= ended["started_at"]


def test_unknown_status_is_a_usage_error(data_dir, env):
    result = ghost("list", "--status", "bogus", env=env)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and "bogus" in err
    for valid in ("running", "exited", "killed", "unknown", "all"):
        assert valid in err


ENDINGS = {
    # argv -> (status, exit code, signal)
    ("true",): ("exited", 0, None),
    ("sh", "-c", "exit 3"): ("exited", 3, None),
    ("sh", "-c", "exit 255"): ("exited", 255, None),
    ("sh", "-c", "kill -KILL $$"): ("killed", None, "SIGKILL"),
    (sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"):
        ("killed", None, "SIGSEGV"),
}


def test_every_end_is_recorded_exactly(data_dir, env):
    started = {argv: run_json(*argv, env=env) for argv in ENDINGS}
    for argv, (status, code, sig) in ENDINGS.items():
        ended = wait_ended(started[argv]["id"], env)
        assert (ended["status"], ended["exit_code"], ended["signal"]) == (status, code, sig)
        lines = status_text(ended["id"], env)
        last = f"Exit code: {code}" if status == "exited" else f"Signal: {sig}"
        assert_status_lines(lines, ended, last)
        shown = f"{status} ({code})" if status == "exited" else f"{status} ({sig})"
        assert f"Status: {shown}" in lines  # how it ended, on the status line (issue 13)
        assert last in lines


def test_status_of_a_running_task(data_dir, env, tmp_path):
    started = run_json("--cwd", str(tmp_path), "sleep", "30", env=env)
    lines = status_text(started["id"], env)
    assert lines[:6] == [f"Task: {started['id']}", f"PID: {started['pid']}",
                         "Status: running", "Command: sleep 30",
                         f"Working directory: {tmp_path}", lines[5]]
    assert re.fullmatch(r"Started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", lines[5])
    assert not any(line.startswith(("Finished:", "Exit code:", "Signal:")) for line in lines)
    assert lines[-1] == f"Log file: {started['log_path']}"
    data = status_json(started["id"], env)
    assert data.keys() >= JSON_KEYS
    assert (data["status"], data["finished_at"], data["exit_code"]) == ("running", None, None)


def _plant(data_dir: str, task_ids: list[str]) -> None:
    """Record spawned events with chosen ids (their processes never existed)."""
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    try:
        store.append([make(SPAWNED, t, command=["planted"], cwd="/", pid=2**22 - 7, pgid=2**22 - 7,
                           start_ticks=1, boot_id="", log_path=f"/nonexistent/{t}.log")
                      for t in task_ids])
    finally:
        store.close()


def test_id_prefixes(data_dir, env):
    started = run_json("sleep", "30", env=env)
    prefix = started["id"][:4]
    assert status_json(prefix, env)["id"] == started["id"]
    assert status_json(started["id"][:13], env)["id"] == started["id"]
    short = ghost("status", started["id"][:3], env=env)
    assert short.returncode == 1 and "not found" in text(short)[1]
    unknown = ghost("status", "ffffffff-dead-beef", env=env)
    assert unknown.returncode == 1
    assert text(unknown)[1].startswith("Error: ") and "ffffffff-dead-beef" in text(unknown)[1]
    assert "not found" in text(unknown)[1]


def test_ambiguous_prefix_lists_candidates(data_dir, env):
    ids = [f"abcd{n}{str(uuid.uuid4())[5:]}" for n in (1, 2)]
    _plant(data_dir, ids)
    result = ghost("status", "abcd", env=env)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("Error: ")
    assert "ambiguous" in err and ids[0] in err and ids[1] in err
    assert status_json("abcd2", env)["id"] == ids[1]
    assert ghost("log", "abcd", env=env).returncode == 2
    assert ghost("stop", "abcd", env=env).returncode == 2


def test_log_passes_bytes_through(data_dir, env):
    payload = bytes(range(256)) + b"\r\nline\rover\0nul\n\xff\xfe not utf-8\nlast-no-newline"
    code = f"import sys; sys.stdout.buffer.write({payload!r})"
    started = run_json(sys.executable, "-c", code, env=env)
    wait_ended(started["id"], env)
    result = ghost("log", started["id"], env=env)
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout == payload
    tail = ghost("log", "-n", "2", started["id"], env=env)
    assert tail.stdout == b"\xff\xfe not utf-8\nlast-no-newline"
    assert ghost("log", "--tail", "0", started["id"], env=env).stdout == b""


@pytest.mark.parametrize(("content", "n", "expected"), [
    ("1\n2\n3\n", 2, "2\n3\n"),
    ("1\n2\n3\n", 5, "1\n2\n3\n"),
    ("1\n\n\n", 2, "\n\n"),
    ("only", 1, "only"),
])
def test_log_tail(data_dir, env, content, n, expected):
    started = run_json("printf", "%s", content, env=env)
    wait_ended(started["id"], env)
    assert ghost("log", "-n", str(n), started["id"], env=env).stdout == expected.encode()


def test_log_into_a_closed_pipe_is_quiet(data_dir, env):
    started = run_json("seq", "1", "300000", env=env)
    wait_ended(started["id"], env)
    reader = subprocess.Popen([*GHOST, "log", started["id"]], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    try:
        assert reader.stdout is not None
        first = reader.stdout.readline()
        reader.stdout.close()  # what `| head -1` does after its line
        _, err = reader.communicate(timeout=30)
    finally:
        reader.kill()
    assert first == b"1\n"
    assert err == b""
    assert reader.returncode == 0


def test_log_of_unknown_task(data_dir, env):
    run_json("true", env=env)
    result = ghost("log", "no-such-task", env=env)
    assert result.returncode == 1
    assert text(result)[1] == "Error: task no-such-task not found\n"
