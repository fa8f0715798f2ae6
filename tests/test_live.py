"""Following live: `ghost log -f`, `ghost list --watch` and `ghost wait`, with real processes.

Tasks that must hold still until the test is ready block on a FIFO (`fifo_task`): the test
opens it for writing when it wants them to go on, so no test depends on sleeps or timing luck.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support import GHOST, ghost, run_json, status_json, text, wait_ended, wait_for

REPO = Path(__file__).resolve().parent.parent

# Prints its first argument (as bytes, backslash escapes allowed), blocks until the FIFO is
# opened and closed by the test, prints its second argument, exits with its third.
FIFO_TASK = r"""
import sys
out = sys.stdout.buffer
out.write(sys.argv[2].encode().decode("unicode_escape").encode("latin-1")); out.flush()
with open(sys.argv[1], "rb") as go:
    go.read()
out.write(sys.argv[3].encode().decode("unicode_escape").encode("latin-1")); out.flush()
sys.exit(int(sys.argv[4]))
"""


def fifo_task(tmp_path: Path, env: dict[str, str], before: str, after: str,
              code: int = 0, name: str = "go") -> tuple[dict, Path]:
    fifo = tmp_path / name
    os.mkfifo(fifo, 0o600)
    task = run_json(sys.executable, "-c", FIFO_TASK, str(fifo), before, after, str(code),
                    env=env)
    return task, fifo


def release(fifo: Path) -> None:
    """Let a fifo_task go on (opening blocks until the task has opened its end)."""
    with open(fifo, "wb"):
        pass


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*GHOST, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)


class Reader:
    """Reads a process's stdout incrementally, waiting with a deadline for what a test wants."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.data = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(proc.stdout, selectors.EVENT_READ)

    def until(self, wanted: Callable[[bytes], bool], timeout: float = 15.0) -> bytes:
        deadline = time.monotonic() + timeout
        while not wanted(self.data):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out; stdout so far: {self.data[-2000:]!r}")
            if self.sel.select(left):
                chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
                if not chunk:
                    raise AssertionError(f"stdout closed early: {self.data[-2000:]!r}")
                self.data += chunk
        return self.data


def watching(pid: int) -> bool:
    """True once the process holds an inotify instance, i.e. its watcher is running."""
    fds = f"/proc/{pid}/fd"
    try:
        return any(os.readlink(f"{fds}/{fd}") == "anon_inode:inotify" for fd in os.listdir(fds))
    except FileNotFoundError:
        return False


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


# -- log -f --------------------------------------------------------------------------------

COUNTER = r"""
import sys
print("ready", flush=True)
with open(sys.argv[1], "rb") as go:
    go.read()
out = sys.stdout
for i in range(int(sys.argv[2])):
    out.write(f"{i}\n")
"""


def test_follow_sees_every_line_in_order_and_ends_with_the_task(data_dir, env, tmp_path):
    fifo = tmp_path / "go"
    os.mkfifo(fifo, 0o600)
    task = run_json(sys.executable, "-c", COUNTER, str(fifo), "5000", env=env)
    follower = start("log", "-f", task["id"], env=env)
    try:
        reader = Reader(follower)
        reader.until(lambda d: d == b"ready\n")  # following before the lines are written
        release(fifo)
        out, err = follower.communicate(timeout=30)
    finally:
        stop_process(follower)
    ended_at = time.time()
    assert follower.returncode == 0, err
    assert (reader.data + out).decode().splitlines() == ["ready", *map(str, range(5000))]
    assert err.decode() == f"ghost: task {task['id'][:8]} exited with code 0\n"
    finished = status_json(task["id"], env)["finished_at"]
    from datetime import datetime

    end = datetime.fromisoformat(finished.replace("Z", "+00:00")).timestamp()
    assert ended_at - end < 5, "log -f must return soon after the task ended"


def test_follow_started_first_then_tail_then_bytes_pass_through(data_dir, env, tmp_path):
    before = "".join(f"l{i}\\n" for i in range(1, 11))
    task, fifo = fifo_task(tmp_path, env, before, "caf\\xe9\\r\\nlast without newline", 7)
    wait_for(lambda: Path(task["log_path"]).read_bytes().endswith(b"l10\n"),
             message="the task's first lines")
    follower = start("log", "-f", "-n", "3", task["id"][:8], env=env)
    try:
        reader = Reader(follower)
        assert reader.until(lambda d: d.endswith(b"l10\n")) == b"l8\nl9\nl10\n"
        release(fifo)
        out, err = follower.communicate(timeout=15)
    finally:
        stop_process(follower)
    assert reader.data + out == b"l8\nl9\nl10\ncaf\xe9\r\nlast without newline"
    assert follower.returncode == 0
    assert err.decode() == f"ghost: task {task['id'][:8]} exited with code 7\n"


def test_follow_on_a_finished_task_prints_everything_and_returns(data_dir, env):
    script = "import sys; sys.stdout.buffer.write(b'a\\x00\\xff\\rb' + b'x' * 10_000_000)"
    task = run_json(sys.executable, "-c", script, env=env)
    wait_ended(task["id"], env)
    result = ghost("log", "-f", task["id"], env=env, timeout=30)
    assert result.returncode == 0
    assert result.stdout == Path(task["log_path"]).read_bytes()
    assert len(result.stdout) == 10_000_005
    assert text(result)[1] == f"ghost: task {task['id'][:8]} exited with code 0\n"


def test_follow_of_a_killed_task_says_how_it_ended(data_dir, env):
    task = run_json("sh", "-c", "echo bye; kill -9 $$", env=env)
    result = ghost("log", "-f", task["id"], env=env)
    assert result.returncode == 0
    assert result.stdout == b"bye\n"
    assert text(result)[1] == f"ghost: task {task['id'][:8]} killed by SIGKILL\n"


def test_follow_of_an_unknown_task_is_an_error(data_dir, env):
    run_json("true", env=env)
    result = ghost("log", "-f", "nope1234", env=env)
    assert result.returncode == 1
    assert text(result)[1] == "Error: task nope1234 not found\n"


def test_ctrl_c_exits_130_quietly(data_dir, env, tmp_path):
    task, fifo = fifo_task(tmp_path, env, "hello\\n", "")
    for args in (("log", "-f", task["id"]), ("list", "--watch"), ("wait", task["id"])):
        proc = start(*args, env=env)
        try:
            # Ready once its watcher is set up (before that, Python may not even have its
            # SIGINT handler yet).
            wait_for(lambda proc=proc: watching(proc.pid), message=f"{args[0]} to watch")
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)
        finally:
            stop_process(proc)
        assert (args[0], proc.returncode, err) == (args[0], 130, b"")
    release(fifo)


def test_closed_pipe_ends_the_follower_quietly(data_dir, env, tmp_path):
    task, fifo = fifo_task(tmp_path, env, "one\\ntwo\\n", "")
    follower = start("log", "-f", task["id"], env=env)
    head = subprocess.Popen(["head", "-1"], stdin=follower.stdout, stdout=subprocess.PIPE)
    follower.stdout.close()
    try:
        assert head.communicate(timeout=15)[0] == b"one\n"
        # The task is still running and silent: the follower must notice the pipe by itself.
        _, err = follower.communicate(timeout=15)
    finally:
        stop_process(follower)
        release(fifo)
    assert follower.returncode == 0
    assert err == b""


def test_several_tasks_are_prefixed_and_never_mixed_inside_a_line(data_dir, env, tmp_path):
    first, go_first = fifo_task(tmp_path, env, "a1\\npart", "ial\\na2\\n", name="go1")
    second, go_second = fifo_task(tmp_path, env, "b1\\n", "b2\\nb-last", 4, name="go2")
    a, b = first["id"][:8], second["id"][:8]
    follower = start("log", "-f", first["id"], second["id"], env=env)
    try:
        reader = Reader(follower)
        reader.until(lambda d: f"{a} | a1\n".encode() in d and f"{b} | b1\n".encode() in d)
        release(go_second)  # the second task writes and ends while the first is mid-line
        reader.until(lambda d: f"{b} | b-last\n".encode() in d)
        release(go_first)
        out, err = follower.communicate(timeout=15)
    finally:
        stop_process(follower)
    lines = (reader.data + out).decode().splitlines()
    assert [x for x in lines if x.startswith(a)] == [f"{a} | a1", f"{a} | partial", f"{a} | a2"]
    assert [x for x in lines if x.startswith(b)] == [f"{b} | b1", f"{b} | b2", f"{b} | b-last"]
    assert len(lines) == 6
    assert follower.returncode == 0
    assert sorted(err.decode().splitlines()) == sorted(
        [f"ghost: task {a} exited with code 0", f"ghost: task {b} exited with code 4"])


# -- list --watch --------------------------------------------------------------------------

def test_list_watch_prints_a_table_when_a_task_starts_and_when_it_ends(data_dir, env, tmp_path):
    watcher = start("list", "--watch", env=env)  # before anything exists: waits for the store
    try:
        reader = Reader(watcher)
        reader.until(lambda d: b"No tasks found." in d)
        task, fifo = fifo_task(tmp_path, env, "", "")
        row = task["id"].encode()
        reader.until(lambda d: row in d and b"running" in d)
        seen = len(reader.data)
        release(fifo)
        reader.until(lambda d: b"exited" in d[seen:])
        tables = reader.data.decode().strip().split("\n\n")
        assert tables[0] == "No tasks found."
        assert any(task["id"] in t and "running" in t for t in tables)
        assert task["id"] in tables[-1] and "exited" in tables[-1]
        assert all(t.startswith("Task ID") for t in tables[1:])
    finally:
        stop_process(watcher)


def test_list_watch_filters_by_status(data_dir, env, tmp_path):
    task, fifo = fifo_task(tmp_path, env, "", "")
    watcher = start("list", "-w", "-s", "exited", env=env)
    try:
        reader = Reader(watcher)
        reader.until(lambda d: b"No tasks found." in d)
        release(fifo)
        reader.until(lambda d: task["id"].encode() in d)
        assert reader.data.decode().split("\n\n")[0] == "No tasks found."
    finally:
        stop_process(watcher)


# -- wait ----------------------------------------------------------------------------------

def test_wait_exits_with_the_task_exit_code(data_dir, env, tmp_path):
    task, fifo = fifo_task(tmp_path, env, "", "", 3)
    waiter = start("wait", task["id"], env=env)
    try:
        release(fifo)
        out, err = waiter.communicate(timeout=15)
    finally:
        stop_process(waiter)
    assert (waiter.returncode, out) == (3, b"")
    assert err.decode() == f"ghost: task {task['id'][:8]} exited with code 3\n"
    started = time.monotonic()
    again = ghost("wait", "--quiet", task["id"][:6], env=env)  # already ended: at once
    assert (again.returncode, again.stdout, again.stderr) == (3, b"", b"")
    assert time.monotonic() - started < 5


def test_wait_for_a_killed_task_is_128_plus_the_signal(data_dir, env):
    task = run_json("sleep", "60", env=env)
    waiter = start("wait", task["id"], env=env)
    try:
        assert ghost("kill", task["id"], env=env).returncode == 0
        _, err = waiter.communicate(timeout=15)
    finally:
        stop_process(waiter)
    assert waiter.returncode == 128 + 9
    assert err.decode() == f"ghost: task {task['id'][:8]} killed by SIGKILL\n"


def test_wait_for_several_is_the_first_failure_in_argument_order(data_dir, env):
    ok = run_json("true", env=env)
    five = run_json("sh", "-c", "exit 5", env=env)
    seven = run_json("sh", "-c", "exit 7", env=env)
    result = ghost("wait", "-q", ok["id"], seven["id"], five["id"], env=env)
    assert result.returncode == 7
    result = ghost("wait", "-q", ok["id"], ok["id"], env=env)
    assert result.returncode == 0


def test_wait_timeout_is_124_and_names_what_still_runs(data_dir, env):
    task = run_json("sleep", "60", env=env)
    done = run_json("true", env=env)
    wait_ended(done["id"], env)
    result = ghost("wait", "--timeout", "0.3", done["id"], task["id"], env=env)
    assert result.returncode == 124
    assert text(result) == ("", f"Error: timed out after 0.3s; still running: {task['id']}\n")


def test_wait_does_not_hang_on_a_task_whose_monitor_died(data_dir, env):
    task = run_json("sleep", "60", env=env)
    waiter = start("wait", task["id"], env=env)
    try:
        from events.store import Store
        from projections.checkpoint import load_tasks

        store = Store.open(os.path.join(data_dir, "store"), create=False)
        recorded = load_tasks(store)[task["id"]]
        store.close()
        os.kill(recorded.monitor_pid, signal.SIGKILL)
        os.killpg(recorded.pgid, signal.SIGKILL)
        _, err = waiter.communicate(timeout=15)
    finally:
        stop_process(waiter)
    assert waiter.returncode == 1
    assert err.decode().startswith(f"ghost: task {task['id'][:8]} ended, exit code unknown (")


def test_wait_for_end_api_keeps_order_and_reports_timeouts(data_dir, env):
    from ghost.actions.wait import wait_for_end
    from ghost.state.store import _open

    _open.clear()  # the process-wide store cache must not outlive this test's data dir
    try:
        slow = run_json("sleep", "60", env=env)
        quick = run_json("sh", "-c", "exit 2", env=env)
        wait_ended(quick["id"], env)
        result = wait_for_end([slow["id"], quick["id"][:8]], 0.2)
        assert result.timed_out
        assert [t.id for t in result.tasks] == [slow["id"], quick["id"]]
        assert [t.status for t in result.tasks] == ["running", "exited"]
        ghost("kill", slow["id"], env=env)
        result = wait_for_end([slow["id"], quick["id"]], 10)
        assert not result.timed_out
        assert [t.status for t in result.tasks] == ["killed", "exited"]
    finally:
        for store in _open.values():
            store.close()
        _open.clear()


def test_wait_help_documents_exit_codes(data_dir, env):
    out, _ = text(ghost("wait", "--help", env=env))
    assert "128+N" in out and "124" in out


# -- bench smoke ---------------------------------------------------------------------------

def test_follow_bench_quick_prints_its_table(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "bench" / "follow.py"), "--quick"],
                            capture_output=True, timeout=120, cwd=tmp_path)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    assert "| follower | lines | p50 ms | p95 ms | max ms |" in out
    assert "| ghost log -f | 50 |" in out and "| tail -f | 50 |" in out
    assert "| NO |" not in out
