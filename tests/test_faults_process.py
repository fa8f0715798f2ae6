"""Process identity: reboots, PID reuse, zombies, process trees, and the signal gate.

ghost identifies a task by (boot id, pid, start time) and only ever signals through a pidfd
whose start time it has checked. The real PID-reuse test makes the kernel hand a task's pid to
an unrelated process (a private PID namespace and /proc/sys/kernel/ns_last_pid, see
research/reliability.md 2.1) and proves that ghost never touches it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from support import ghost, pid_alive, run_json, status_json, text, wait_for
from test_faults_crash import check_invariants, events_of, open_store

from events import types as ev
from ghost.process import identity as proc


def test_task_from_another_boot_is_lost_and_never_signalled(data_dir, env):
    started = run_json("sleep", "60", env=env)
    rebooted = {**env, "GHOST_TEST_BOOT_ID": "00000000-0000-0000-0000-000000000000"}

    seen = status_json(started["id"], rebooted)
    assert seen["status"] == "unknown" and seen["exit_code"] is None
    assert "rebooted" in seen["reason"]
    result = ghost("stop", "--timeout", "0.2", started["id"], env=rebooted)
    assert result.returncode == 1
    assert text(result)[1] == f"Error: task {started['id']} is not running " \
                              f"(unknown: {seen['reason']})\n"
    assert pid_alive(started["pid"])  # the old boot's pid is never signalled
    assert len(events_of(data_dir, started["id"], ev.LOST)) == 1


def _record_running(data_dir: str, pid: int, ticks: int) -> str:
    """Write a `spawned` event for `pid` as if ghost had started it (monitor long gone)."""
    from ghost.actor import actor

    task = "deadbeef-0000-4000-8000-000000000001"
    store = open_store(data_dir)
    try:
        store.append([ev.make(ev.SPAWNED, task, command=["sleep", "60"], cwd="/", pid=pid,
                              pgid=pid, start_ticks=ticks, boot_id=proc.boot_id(),
                              log_path=os.path.join(data_dir, "logs", f"{task}.log"),
                              monitor={"pid": 0, "start_ticks": 0}, actor=actor("cli"))])
    finally:
        store.close()
    return task


def test_decoy_owning_a_recorded_pid_is_never_signalled(data_dir, env):
    assert ghost("run", "true", env=env).returncode == 0  # creates the store
    decoy = subprocess.Popen(["sleep", "60"], start_new_session=True)  # leads group `pid`
    try:
        wait_for(lambda: proc.start_ticks(decoy.pid), message="the decoy to start")
        # The task "started" one tick before the decoy: same number, another process.
        task = _record_running(data_dir, decoy.pid, proc.start_ticks(decoy.pid) - 1)
        seen = status_json(task, env)
        assert seen["status"] == "unknown" and seen["group_processes"] == 0
        for args in (("stop", "--timeout", "0.2", task), ("kill", task)):
            result = ghost(*args, env=env)
            assert result.returncode == 1 and "is not running" in text(result)[1], text(result)
        assert decoy.poll() is None
        assert len(events_of(data_dir, task, ev.LOST)) == 1
    finally:
        decoy.kill()
        decoy.wait()


PID_REUSE_SCRIPT = textwrap.dedent("""
    import json, os, signal, subprocess, sys, time
    GHOST = [sys.executable, "-m", "ghost"]

    def g(*args):
        r = subprocess.run([*GHOST, *args], capture_output=True, timeout=60)
        return {"rc": r.returncode, "out": r.stdout.decode(), "err": r.stderr.decode()}

    def gone(pid):  # we are pid 1 of this namespace: reap orphans so their pids free up
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}"):
            try:
                os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pass
            assert time.monotonic() < deadline, f"pid {pid} did not go away"
            time.sleep(0.01)

    task = json.loads(g("run", "--json", "sleep", "300")["out"])
    pid = task["pid"]
    with open(f"/proc/{pid}/stat", "rb") as f:
        monitor = int(f.read().rsplit(b")", 1)[1].split()[1])
    os.kill(monitor, signal.SIGKILL)
    gone(monitor)
    os.killpg(pid, signal.SIGKILL)
    gone(pid)
    for _ in range(20):  # make the kernel hand the task's pid to an unrelated process
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        decoy = subprocess.Popen(["sleep", "300"], start_new_session=True)
        if decoy.pid == pid:
            break
        decoy.kill(); decoy.wait()
    result = {"pid": pid, "decoy": decoy.pid, "status": g("status", "--json", task["id"]),
              "stop": g("stop", "--timeout", "0.2", task["id"]), "list": g("list", "--json")}
    time.sleep(0.3)  # a signal, had one been sent, has been delivered by now
    result["decoy_alive"] = decoy.poll() is None
    print(json.dumps(result))
""")


def test_pid_reused_by_an_unrelated_process_is_never_signalled(data_dir, env):
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork",
                            "--mount-proc", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"no user+PID namespaces here: {probe.stderr.decode().strip()}")
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--pid", "--fork",
                             "--mount-proc", sys.executable, "-c", PID_REUSE_SCRIPT],
                            env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    seen = json.loads(result.stdout)
    assert seen["decoy"] == seen["pid"], "the kernel did not reuse the pid"
    status = json.loads(seen["status"]["out"])
    assert status["status"] == "unknown" and status["group_processes"] == 0
    assert seen["stop"]["rc"] == 1 and "is not running" in seen["stop"]["err"]
    assert json.loads(seen["list"]["out"])[0]["status"] == "unknown"
    assert seen["decoy_alive"] is True
    assert check_invariants(data_dir) == []


def test_zombie_counts_as_dead():
    child = subprocess.Popen(["sleep", "0.2"])
    try:
        ticks = proc.start_ticks(child.pid)
        assert ticks and proc.is_alive(child.pid, ticks)
        wait_for(lambda: proc.read_stat(child.pid).state == "Z", message="a zombie")
        assert not proc.is_alive(child.pid, ticks)
        assert proc.signal_task(child.pid, child.pid, ticks, 0) == 0
    finally:
        child.wait()


def test_signal_gate_refuses_init_ourselves_and_changed_identities():
    own = proc.start_ticks(os.getpid())
    assert proc.signal_task(1, 1, proc.start_ticks(1) or 0, 0) == 0
    assert proc.signal_task(os.getpid(), os.getpgrp(), own, 0) == 0
    for bad in (0, -1, 2**22 + 1):
        assert proc.signal_task(bad, bad, 1, 0) == 0
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        ticks = wait_for(lambda: proc.start_ticks(other.pid), message="a process to start")
        assert proc.signal_task(other.pid, other.pid, ticks + 1, signal.SIGKILL) == 0
        assert other.poll() is None
        assert proc.signal_task(other.pid, other.pid, ticks, 0) == 1
    finally:
        other.kill()
        other.wait()
