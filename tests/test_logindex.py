"""The chunk index of pumped tasks: `log --stream/--timestamps/--since/--until` (and with -f),
--log-max rotation read as one log, cleanup of every piece, and a log whose disk is full."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from support import GHOST, ghost, run_json, status_json, text, wait_ended

PY = sys.executable
STAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d) (.*)$")
INTERLEAVED = ("import sys\n"
               "for i in range(400):\n"
               "    sys.stdout.write(f'out {i}\\n'); sys.stdout.flush()\n"
               "    sys.stderr.write(f'err {i}\\n'); sys.stderr.flush()\n")


def log(*args: str, env: dict[str, str]) -> bytes:
    result = ghost("log", *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stream_tags_are_exact_under_interleaved_writes(env):
    task = run_json("--timestamps", PY, "-c", INTERLEAVED, env=env)
    wait_ended(task["id"], env)
    out = log("--stream", "stdout", task["id"], env=env)
    err = log("--stream", "stderr", task["id"], env=env)
    assert out == b"".join(f"out {i}\n".encode() for i in range(400))
    assert err == b"".join(f"err {i}\n".encode() for i in range(400))
    everything = log(task["id"], env=env)
    assert len(everything) == len(out) + len(err)  # the log is exactly the task's bytes


def test_timestamps_never_go_backwards(env):
    task = run_json("--timestamps", PY, "-c", INTERLEAVED, env=env)
    wait_ended(task["id"], env)
    lines = log("--timestamps", task["id"], env=env).splitlines()
    assert len(lines) == 800
    times = []
    for line in lines:
        match = STAMP.match(line)
        assert match, line
        times.append(datetime.fromisoformat(match.group(1).decode()))
    assert times == sorted(times)
    assert {m.group(2)[:3] for m in map(STAMP.match, lines)} == {b"out", b"err"}


def test_since_and_until_select_by_write_time(env):
    code = "import time; print('early', flush=True); time.sleep(1.5); print('late', flush=True)"
    task = run_json("--timestamps", PY, "-c", code, env=env)
    wait_ended(task["id"], env)
    stamped = log("--timestamps", task["id"], env=env).splitlines()
    early, late = (STAMP.match(line).group(1).decode() for line in stamped)
    middle = datetime.fromisoformat(early).timestamp() + 0.75
    between = datetime.fromtimestamp(middle).astimezone().isoformat()
    assert log("--since", between, task["id"], env=env) == b"late\n"
    assert log("--until", between, task["id"], env=env) == b"early\n"
    assert log("--since", late, "--until", late, task["id"], env=env) == b"late\n"


def test_tasks_without_an_index_say_so(env):
    task = run_json("echo", "plain", env=env)
    wait_ended(task["id"], env)
    for flag in (["--timestamps"], ["--stream", "stderr"], ["--since", "1h"]):
        result = ghost("log", *flag, task["id"], env=env)
        assert result.returncode == 2
        out, err = text(result)
        assert out == ""
        assert err.startswith(f"Error: task {task['id']} has no output index:")
        assert err.count("\n") == 1


def test_follow_with_stream_and_timestamps(env):
    code = ("import sys, time\n"
            "for i in range(5):\n"
            "    print(f'o{i}', flush=True); print(f'e{i}', file=sys.stderr, flush=True)\n"
            "    time.sleep(0.2)\n")
    task = run_json("--timestamps", PY, "-c", code, env=env)
    proc = subprocess.run([*GHOST, "log", "-f", "--stream", "stderr", "--timestamps",
                           task["id"]], env=env, capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [STAMP.match(line).group(2) for line in lines] == [f"e{i}".encode()
                                                             for i in range(5)]
    assert proc.stderr.decode().endswith("exited with code 0\n")


def test_log_max_rotates_and_reads_as_one(env):
    task = run_json("--log-max", "2K", "--log-keep", "2", "seq", "1", "3000", env=env)
    wait_ended(task["id"], env)
    logs = os.path.join(env["GHOST_DATA_DIR"], "logs")
    base = os.path.join(logs, f"{task['id']}.log")
    sizes = [os.path.getsize(f"{base}.{n}") for n in (2, 1)]
    assert sizes == [2048, 2048]
    assert not os.path.exists(f"{base}.3")
    pieces = b"".join(Path(p).read_bytes() for p in (f"{base}.2", f"{base}.1", base))
    everything = b"".join(f"{i}\n".encode() for i in range(1, 3001))
    assert everything.endswith(pieces)
    assert len(everything) - len(pieces) == 2048 * ((len(everything) - 1) // 2048 - 2)
    assert log(task["id"], env=env) == pieces
    assert log("-n", "3", task["id"], env=env) == b"2998\n2999\n3000\n"
    assert status_json(task["id"], env)["io"]["log_max"] == 2048
    result = ghost("cleanup", "--all", env=env)
    assert result.returncode == 0, result.stderr
    assert [n for n in os.listdir(logs) if n.startswith(task["id"])] == []


def test_follow_reads_across_a_rotation(env):
    code = ("import time\n"
            "for i in range(30):\n"
            "    print('line %04d' % i + 'x' * 90, flush=True); time.sleep(0.05)\n")
    task = run_json("--log-max", "1K", "--log-keep", "10", PY, "-c", code, env=env)
    proc = subprocess.run([*GHOST, "log", "-f", task["id"]], env=env, capture_output=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    expected = b"".join(b"line %04d" % i + b"x" * 90 + b"\n" for i in range(30))
    assert proc.stdout == expected[len(expected) - len(proc.stdout):]
    assert len(proc.stdout) >= len(expected) - 1024 * 11  # at most the pieces before -f began
    assert proc.stdout.endswith(b"line 0029" + b"x" * 90 + b"\n")


def test_a_full_disk_is_recorded_once_and_the_task_never_blocks(env):
    env = {**env, "GHOST_TEST_LOG_FULL_AFTER": "1000"}
    # 4 MB into a pipe of 1 MB: the task would block for ever if the pump stopped reading.
    code = "import sys; sys.stdout.write('y' * 4_000_000); sys.stdout.flush(); print('done')"
    task = run_json("--timestamps", PY, "-c", code, env=env)
    ended = wait_ended(task["id"], env, timeout=30)
    assert ended["exit_code"] == 0
    assert ended["log_write_failed"] == "No space left on device"
    assert os.path.getsize(os.path.join(env["GHOST_DATA_DIR"], "logs", f"{task['id']}.log")) \
        == 1000
    out, _ = text(ghost("status", task["id"], env=env))
    assert "Log write failed: No space left on device (output since then is lost)" in out
    failures = [line for line in ghost("events", env=env).stdout.splitlines()
                if b'"log_write_failed"' in line]
    assert len(failures) == 1 and b'"errno":28' in failures[0]
