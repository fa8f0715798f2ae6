"""The monitor and its waiter against a hostile caller and a vanishing store (issue 12).

Inherited file descriptors must not keep a caller's pipe open for the task's lifetime; a task
killed before exec is recorded as killed, not `lost`; a waiter never writes into a store other
than the one its task was started in; a monitor dying at start leaves no orphan log.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import time
import uuid

from support import GHOST, ghost, pid_alive, run_json, status_json, text, wait_ended, wait_for
from test_faults_crash import all_events, check_invariants, events_of, spawned_event, tagged_pids
from test_faults_storage import fill, tmpfs

from events import types as ev


def kill_task(task: dict, monitor: int | None = None) -> None:
    """Kill a task's group (and its monitor) by pid, even when its store is gone."""
    for pid, group in ((task["pid"], True), (monitor, False)):
        if pid:
            try:
                os.killpg(pid, signal.SIGKILL) if group else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_for(lambda p=pid: not pid_alive(p), message=f"pid {pid} to die")


def at_eof(fd: int, deadline: float) -> bool:
    """Read `fd` until EOF or the deadline (a pipe still held open elsewhere never ends)."""
    while (left := deadline - time.monotonic()) > 0:
        if select.select([fd], [], [], left)[0] and os.read(fd, 4096) == b"":
            return True
    return False


def test_a_pipe_given_to_run_reaches_eof_when_run_exits(data_dir, env):
    extra_r, extra_w = os.pipe()
    proc = subprocess.Popen([*GHOST, "run", "--json", "sleep", "30"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(extra_w,))
    os.close(extra_w)
    task = None
    try:
        # communicate() returns only at EOF on stdout: held open by the monitor or the waiter,
        # it would wait for the task's 30 s.
        out, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err
        task = json.loads(out)
        assert at_eof(extra_r, time.monotonic() + 15), "fd 3+ still open in the monitor"
        assert status_json(task["id"], env)["status"] == "running"
        monitor = spawned_event(data_dir, task["id"]).data["monitor"]["pid"]
        assert sorted(os.listdir(f"/proc/{monitor}/fd")) == ["0", "1", "2"]
    finally:
        os.close(extra_r)
        proc.kill()
        if task:
            kill_task(task)


def test_a_task_killed_before_exec_is_recorded_killed_not_lost(data_dir, env):
    crash = {**env, "GHOST_TEST_CRASH_AT": "task:before-exec"}
    result = ghost("run", "--json", "sleep", "30", env=crash)
    out, err = text(result)
    assert result.returncode == 0 and err == "", err  # no "monitor failed: Broken pipe"
    task = json.loads(out)
    ended = wait_ended(task["id"], env)
    assert (ended["status"], ended["signal"]) == ("killed", "SIGKILL")
    assert events_of(data_dir, task["id"], ev.LOST) == []
    assert check_invariants(data_dir) == []


def test_a_waiter_never_writes_into_a_store_it_did_not_start_in(data_dir, env, tmp_path):
    gates = [str(tmp_path / "gate-1"), str(tmp_path / "gate-2")]
    tasks, monitors = [], []
    for gate in gates:
        open(gate, "w").close()
        task = run_json("sh", "-c", f"while [ -e {gate} ]; do sleep 0.02; done", env=env)
        tasks.append(task)
        monitors.append(spawned_event(data_dir, task["id"]).data["monitor"]["pid"])
    try:
        shutil.rmtree(data_dir)  # while both tasks run

        os.unlink(gates[0])  # the store is gone: the first waiter must not create one
        wait_for(lambda: not pid_alive(monitors[0]), message="the first waiter to exit")
        assert not os.path.exists(os.path.join(data_dir, "store", "data.mdb"))

        other = run_json("true", env=env)  # a new store, with another id
        wait_ended(other["id"], env)
        os.unlink(gates[1])  # the second waiter finds a store, but not its own
        wait_for(lambda: not pid_alive(monitors[1]), message="the second waiter to exit")
        assert {e.task for e in all_events(data_dir)} == {other["id"]}
        assert check_invariants(data_dir) == []
    finally:
        for gate in gates:
            if os.path.exists(gate):
                os.unlink(gate)
        for task, monitor in zip(tasks, monitors, strict=True):
            kill_task(task, monitor)


def test_a_monitor_dying_on_a_full_disk_exits_74_and_leaves_no_log(data_dir, env):
    tag = f"GHOST_TEST_TAG={uuid.uuid4().hex}"
    with tmpfs(data_dir, "size=1m,mode=0700"):
        fill(os.path.join(data_dir, "filler"))  # a fresh store: LMDB's lock file gets SIGBUS
        result = ghost("run", "sleep", "30", env={**env, "GHOST_TEST_TAG": tag.split("=")[1]})
        out, err = text(result)
        assert result.returncode == 74 and out == "", err
        assert err.startswith("Error: ") and err.count("\n") == 1 and "no space left" in err.lower()
        logs = os.path.join(data_dir, "logs")
        assert not os.path.isdir(logs) or os.listdir(logs) == []
        assert tagged_pids(tag) == []
