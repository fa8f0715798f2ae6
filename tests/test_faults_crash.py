"""Crashes: the CLI or the monitor SIGKILLed at every step of a task's life.

Whatever dies and wherever, ghost must never run a task it has not recorded, never show a task
as running whose process is gone, never record two ends for one task, and always reopen its
store. The seams are ghost.faults.crash_point (GHOST_TEST_CRASH_AT), which SIGKILL the process
exactly as `kill -9` would. The helpers here are the invariant checker used by the other
tests/test_faults_*.py files as well.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import uuid

import pytest
from support import GHOST, ghost, pid_alive, run_json, status_json, text, wait_for

from events.store import Store
from events.types import ENDINGS, LOST, SPAWNED, Corrupt, Event
from ghost.faults import CRASH_POINTS
from projections.checkpoint import load_tasks
from projections.tasks import rebuild

# -- helpers shared by the fault tests -----------------------------------------------------


def open_store(data_dir: str) -> Store:
    from projections.checkpoint import VIEWS

    store = Store.open(os.path.join(data_dir, "store"), create=False, views=VIEWS)
    assert store is not None, f"no event store in {data_dir}"
    return store


def all_events(data_dir: str) -> list[Event | Corrupt]:
    if not os.path.exists(os.path.join(data_dir, "store", "data.mdb")):
        return []
    store = open_store(data_dir)
    try:
        return list(store.scan())
    finally:
        store.close()


def events_of(data_dir: str, task: str, kind: str | None = None) -> list[Event]:
    return [e for e in all_events(data_dir) if isinstance(e, Event) and e.task == task
            and (kind is None or e.type == kind)]


def spawned_event(data_dir: str, task: str) -> Event:
    found = events_of(data_dir, task, SPAWNED)
    assert len(found) == 1, f"task {task} has {len(found)} spawned events"
    return found[0]


def tagged_pids(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `tag` (a NAME=value string)."""
    needle = tag.encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if (environ.startswith(needle) or b"\0" + needle in environ) and pid_alive(int(name)):
            found.append(int(name))
    return found


def start_ticks(pid: int) -> int | None:
    from ghost.process.identity import start_ticks as ticks

    return ticks(pid)


def check_invariants(data_dir: str, tag: str | None = None) -> list[str]:
    """What must hold after any fault; returns the violations (empty when all hold).

    Call after a reconciling read (`ghost list`): the store opens, seqs run 1..N without a gap,
    nothing is corrupt, every task has at most one end, the stored view equals a full rebuild,
    no task is `running` whose process is gone, and every live process carrying `tag` in its
    environment is a recorded, running task or its monitor.
    """
    problems: list[str] = []
    if not os.path.exists(os.path.join(data_dir, "store", "data.mdb")):
        live = tagged_pids(tag) if tag else []
        return [f"processes {live} run but nothing is recorded"] if live else []
    store = open_store(data_dir)
    try:
        events = list(store.scan())
        view = load_tasks(store)
    finally:
        store.close()
    seqs = [e.seq for e in events]
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append(f"sequence is not gap-free: {seqs}")
    problems += [f"corrupt event at seq {e.seq}" for e in events if isinstance(e, Corrupt)]
    ends: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, Event) and e.type in ENDINGS:
            ends.setdefault(e.task, []).append(e.type)
    problems += [f"task {t} has {len(v)} ends: {v}" for t, v in ends.items() if len(v) > 1]
    if view != rebuild(events):
        problems.append("the stored view differs from a full rebuild")
    for task in view.values():
        if task.running and start_ticks(task.pid) != task.start_ticks:
            problems.append(f"task {task.id} is shown running but pid {task.pid} is gone")
    if tag:
        running = {(t.pid, t.start_ticks) for t in view.values() if t.running}
        running |= {(t.monitor_pid, t.monitor_start_ticks) for t in view.values() if t.running}
        for pid in tagged_pids(tag):
            if (pid, start_ticks(pid)) not in running:
                problems.append(f"process {pid} runs without a record of a running task")
    return problems


def list_json(env: dict[str, str]) -> list[dict]:
    result = ghost("list", "--json", env=env)
    assert result.returncode == 0, text(result)
    return json.loads(result.stdout)


def settle(data_dir: str, env: dict[str, str], tag: str | None = None,
           timeout: float = 15.0) -> None:
    """Reconcile (via `ghost list`) until every invariant holds; fail after `timeout`."""
    def healthy() -> bool:
        list_json(env)
        return not check_invariants(data_dir, tag)

    try:
        wait_for(healthy, timeout, interval=0.1, message="the invariants to hold")
    except AssertionError:
        raise AssertionError("; ".join(check_invariants(data_dir, tag))) from None


def kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for(lambda: not pid_alive(pid), message=f"pid {pid} to die")


def doctor_ok(env: dict[str, str]) -> None:
    result = ghost("doctor", env=env)
    assert result.returncode == 0, text(result)


# -- crash points --------------------------------------------------------------------------

# point -> (exit status of `ghost run`, the task's status once settled: None = not recorded)
EXPECTED = {
    "run:before-monitor-start": (-signal.SIGKILL, None),
    "run:after-monitor-start": (-signal.SIGKILL, "running"),
    "monitor:before-spawned": (1, None),
    "monitor:after-spawned": (1, "unknown"),
    "monitor:after-go": (1, "running"),
    "monitor:before-end-record": (0, "unknown"),
    # The live monitor saw its task die before exec and records that, not `lost`.
    "task:before-exec": (0, "killed"),
}


def test_every_crash_point_is_covered():
    assert set(EXPECTED) == set(CRASH_POINTS)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_point_leaves_no_unrecorded_or_phantom_task(point, data_dir, env):
    tag = f"GHOST_TEST_TAG={uuid.uuid4().hex}"  # inherited by the CLI, monitor and task
    mark = f"GHOST_MARK={uuid.uuid4().hex}"  # the task's own environment only
    crash_env = {**env, "GHOST_TEST_CRASH_AT": point, tag.split("=")[0]: tag.split("=")[1]}
    command = ["sh", "-c", "exit 3"] if point == "monitor:before-end-record" else ["sleep", "60"]
    result = ghost("run", "--json", "--env", mark, *command, env=crash_env)
    want_rc, want_status = EXPECTED[point]
    assert result.returncode == want_rc, text(result)
    if want_rc == 1:  # the CLI outlived the monitor: one clear line, no traceback
        assert text(result)[1].startswith("Error: ") and text(result)[1].count("\n") == 1

    settle(data_dir, env, tag)
    tasks = list_json(env)
    if want_status is None:
        assert tasks == []
        assert tagged_pids(mark) == []
        doctor_ok(env)
        return
    assert len(tasks) == 1 and tasks[0]["status"] == want_status, tasks
    task = tasks[0]
    if want_status == "running":
        assert tagged_pids(mark) == [task["pid"]]
        observed = status_json(task["id"], env)
        assert observed["unmonitored"] == (point == "monitor:after-go")
        kill_group(task["pid"])
        settle(data_dir, env, tag)
        task = status_json(task["id"], env)
        # A living monitor records the exact end; a dead one leaves it unknown.
        assert task["status"] == ("killed" if point == "run:after-monitor-start" else "unknown")
    assert task["exit_code"] is None
    assert len(events_of(data_dir, task["id"], LOST)) == (task["status"] == "unknown")
    doctor_ok(env)


# -- a monitor killed while its task runs ----------------------------------------------------


def test_killed_monitor_shows_unmonitored_then_exactly_one_lost_under_concurrent_readers(
        data_dir, env):
    started = run_json("sleep", "60", env=env)
    monitor = spawned_event(data_dir, started["id"]).data["monitor"]["pid"]
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(monitor), message="the monitor to die")

    result = ghost("status", started["id"], env=env)
    assert "Status: running (unmonitored)" in text(result)[0]
    assert status_json(started["id"], env)["unmonitored"] is True
    assert pid_alive(started["pid"])  # the task itself is untouched by its monitor's death

    kill_group(started["pid"])
    readers = [subprocess.Popen([*GHOST, "status", "--json", started["id"]], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
               for _ in range(4)]
    readers.append(subprocess.Popen([*GHOST, "list", "--json"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outputs = [r.communicate(timeout=60) for r in readers]
    assert [r.returncode for r in readers] == [0] * 5, outputs
    for out, _ in outputs[:4]:
        seen = json.loads(out)
        assert seen["status"] == "unknown" and seen["exit_code"] is None
        assert "monitor died" in seen["reason"]
    assert json.loads(outputs[4][0])[0]["status"] == "unknown"
    assert len(events_of(data_dir, started["id"], LOST)) == 1
    assert check_invariants(data_dir) == []


def test_task_output_keeps_flowing_after_its_monitor_dies(data_dir, env):
    started = run_json("sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.01; done",
                       env=env)
    monitor = spawned_event(data_dir, started["id"]).data["monitor"]["pid"]
    os.kill(monitor, signal.SIGKILL)
    wait_for(lambda: not pid_alive(monitor), message="the monitor to die")
    size = os.path.getsize(started["log_path"])
    wait_for(lambda: os.path.getsize(started["log_path"]) > size + 100,
             message="the task to keep writing its log")
    assert pid_alive(started["pid"])
