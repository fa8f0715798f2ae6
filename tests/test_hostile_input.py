"""Edge values of every numeric and time option, non-UTF-8 task ids and data dirs that cannot
be reached (issue 12 item 5): each is refused at parse time with one `Error:` line and a
documented exit code (2 for usage, 1 or 77 for the data dir), before anything is signalled,
waited for or written."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support import GHOST, ghost, run_json, text, wait_ended
from test_faults_crash import all_events

from ghost.errors import NOPERM, USAGE

FOREVER = "9" * 400


def one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    out, err = text(result)
    assert result.returncode == code, (out, err)
    assert out == "" and err.startswith("Error: ") and err.count("\n") == 1, (out, err)
    assert "Traceback" not in err
    for needle in needles:
        assert needle in err, err
    return err


def raw(*args: bytes | str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`ghost ARGS` with bytes arguments passed exactly (for non-UTF-8 values)."""
    argv = [*map(os.fsencode, GHOST), *(os.fsencode(a) for a in args)]
    return subprocess.run(argv, env=env, capture_output=True, timeout=60)


EDGES = [
    (("stop", "-t", "inf"), "'inf' is not a finite number"),
    (("stop", "-t", "nan"), "'nan' is not a finite number"),
    (("stop", "-t", "3000000"), "'3000000' is out of range: 0 to 86400 seconds"),
    (("stop", "-t", "-1"), "out of range"),
    (("wait", "-t", "nan"), "'nan' is not a finite number"),
    (("wait", "-t", "1e308"), "out of range: 0 to 31536000 seconds"),
    (("cleanup", "-d", "inf"), "'inf' is not a finite number"),
    (("cleanup", "-d", "nan"), "'nan' is not a finite number"),
    (("cleanup", "-d", "1e308"), "'1e308' is out of range: 0 to 36500 days"),
    (("list", "--at", "0001-01-01"), "time '0001-01-01' is out of range"),
    (("list", "--at", "9999-12-31"), "out of range: ghost records times from 1970-01-01"),
    (("list", "--at", FOREVER + "h"), "is out of range"),
    (("list", "--at", FOREVER + "h ago"), "is out of range"),
    (("status", "--at", "0001-01-01"), "out of range"),
    (("history", "--since", "0001-01-01"), "out of range"),
    (("history", "--until", FOREVER + "d"), "out of range"),
    (("history", "--since", "nan"), "cannot understand time 'nan'"),
    (("events", "--from", FOREVER), "out of range"),
    (("log", "-n", "-1"), "-1"),
]


def test_edge_values_are_refused_before_anything_happens(data_dir, env):
    task = run_json("sh", "-c", "sleep 30", env=env)["id"]
    for args, needle in EDGES:
        # with the running task's id: each value is refused before the task is looked up
        with_id = [task] if args[0] in ("stop", "wait", "status", "log") else []
        one_error_line(ghost(*args, *with_id, env=env), USAGE, needle)
    status = ghost("status", "--json", task, env=env)
    assert b'"status": "running"' in status.stdout  # stop -t inf sent no SIGTERM
    types = {e.type for e in all_events(data_dir)}
    assert types == {"spawned"}, types  # no stop_requested, no cleaned: nothing half-done
    assert ghost("kill", task, env=env).returncode == 0


@pytest.mark.parametrize("command", ["status", "log", "kill", "stop", "history", "wait"])
def test_non_utf8_task_id_is_one_error_line(command, data_dir, env):
    for bad in (b"\xff", b"ab\xfe\xfdcd"):
        one_error_line(raw(command, bad, env=env), USAGE, "is not valid UTF-8",
                       "\\xff" if bad == b"\xff" else "\\xfe")


@pytest.mark.parametrize("bad", ["", "   ", "\x1b[2J\x1b]0;PWNED\x07", "a\nb", "f" * 500])
def test_task_id_that_cannot_name_a_task(bad, data_dir, env):
    err = one_error_line(ghost("status", bad, env=env), USAGE)
    assert "\x1b" not in err and "\x07" not in err  # shown escaped


def test_accepted_edge_values_still_work(data_dir, env):
    task = run_json("true", env=env)["id"]
    wait_ended(task, env)
    for args in (("list", "--at", "1970-01-01T00:00Z"), ("list", "--at", "2262-01-01"),
                 ("list", "--at", "0.5h"), ("history", "--since", "1970-01-02"),
                 ("cleanup", "-d", "36500", "--dry-run"), ("wait", "-t", "0", task),
                 ("events", "--from", "0"), ("status", task)):
        result = ghost(*args, env=env)
        assert result.returncode == 0, (args, text(result))


# -- data dirs that cannot be reached ---------------------------------------------------------

UNREACHABLE = [
    ("/proc/ghost-test-data", 1, "No such file or directory"),
    ("/dev/null/ghost", 1, "Not a directory"),
    ("/tmp/" + "x" * 300 + "/ghost", 1, "longer than the file system allows"),
]


@pytest.mark.parametrize(("path", "code", "why"), UNREACHABLE)
def test_unreachable_data_dir_is_one_error_line(path, code, why, tmp_path):
    env = {**os.environ, "GHOST_DATA_DIR": path}
    one_error_line(ghost("run", "true", env=env, cwd=str(tmp_path)), code,
                   "cannot use data directory", why)
    listed = ghost("list", env=env, cwd=str(tmp_path))
    if path.startswith("/proc"):  # a read of a missing data dir: nothing to show, nothing made
        assert listed.returncode == 0 and listed.stderr == b""
    else:
        one_error_line(listed, code, why)
    assert not os.path.exists(path)


def test_home_unset_is_an_error_not_the_current_directory(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GHOST_DATA_DIR", "XDG_DATA_HOME", "HOME")}
    env["HOME"] = ""
    result = ghost("run", "true", env=env, cwd=str(tmp_path))
    # An empty HOME is refused (os.path.expanduser would make it "/": a data dir in /.local).
    one_error_line(result, 1, "home directory")
    assert os.listdir(tmp_path) == []


CHILD = """
import os, sys
from ghost import datadir
from ghost.errors import GhostError
os.setgid(65534); os.setuid(65534)
try:
    datadir.prepare(create=True)
except GhostError as exc:
    print(exc.message); sys.exit(exc.exit_code)
sys.exit(0)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
@pytest.mark.parametrize(("env_update", "named"), [
    ({"HOME": "/nonexistent", "GHOST_DATA_DIR": "", "XDG_DATA_HOME": ""},
     "/nonexistent/.local/share/ghost"),
    ({"GHOST_DATA_DIR": "/opt/ghost-test-x/data"}, "/opt/ghost-test-x/data"),
])
def test_data_dir_without_permission_is_77_as_nobody(env_update, named, tmp_path):
    # The interpreter lives under /root (0700), so `nobody` cannot exec it: the checks run in
    # a real ghost process that drops to nobody after start-up, before touching the data dir.
    env = {**os.environ, **env_update}
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                            timeout=60, cwd="/")
    assert result.returncode == NOPERM, text(result)
    assert f"cannot use data directory {named}: Permission denied" in text(result)[0]
    assert not os.path.exists("/nonexistent") and not os.path.exists("/opt/ghost-test-x")
