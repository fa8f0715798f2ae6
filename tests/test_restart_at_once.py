"""A restart policy with `--restart-delay 0` (ghost.process.respawn): the waiter forks the next
attempt first, held before exec, and records the end, the decision and the next `spawned` in
one transaction. Attempts stay gap-free, each end is recorded once, a stop wins, and a held
attempt the policy does not start never runs and leaves no process behind."""

from __future__ import annotations

import json
import os
import uuid

from support import ghost, pid_alive, run_json, status_json, text, wait_for

from events.store import Store
from events.types import Event


def task_events(data_dir: str, task_id: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.task_events(task_id) if isinstance(e, Event)]
    finally:
        store.close()


def tagged(tag: str) -> list[int]:
    """Live processes whose environment carries `tag` (NAME=value)."""
    needle = tag.encode() + b"\0"
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if (environ.startswith(needle) or b"\0" + needle in environ) and pid_alive(int(entry)):
            found.append(int(entry))
    return found


def attempts_of(events: list[Event]) -> list[int]:
    return [int(e.data.get("attempt", 1)) for e in events if e.type == "spawned"]


def test_a_crash_loop_restarts_in_one_transaction_and_a_stop_wins(data_dir, env):
    task = run_json("--restart", "always", "--restart-delay", "0", "sh", "-c",
                    "echo try; exit 1", env=env)
    wait_for(lambda: len(attempts_of(task_events(data_dir, task["id"]))) >= 4, 30,
             message="four attempts")
    result = ghost("stop", task["id"], env=env)
    assert result.returncode in (0, 1), text(result)  # 1: it was between attempts
    wait_for(lambda: status_json(task["id"], env)["status"] in ("exited", "killed"), 20)
    monitor = [e for e in task_events(data_dir, task["id"])
               if e.type == "spawned"][-1].data["monitor"]["pid"]
    wait_for(lambda: not pid_alive(monitor), 20, message="the last waiter to exit")
    events = task_events(data_dir, task["id"])
    started = attempts_of(events)
    assert started == list(range(1, len(started) + 1))  # gap-free
    ends = [int(e.data.get("attempt", 1)) for e in events if e.type in ("exited", "killed")]
    assert sorted(ends) == started  # every attempt's end exactly once
    stop_at = next(i for i, e in enumerate(events) if e.type == "stop_requested")
    assert not [e for e in events[stop_at:] if e.type == "spawned"]  # nothing after the stop
    for i, event in enumerate(events):  # end, decision and next start: neighbours in the log
        if event.type == "restart_scheduled" and i + 1 < len(events) \
                and events[i + 1].type == "spawned":
            assert events[i - 1].seq + 1 == event.seq and event.seq + 1 == events[i + 1].seq
            assert event.data["delay_ms"] == 0
    log = ghost("log", task["id"], env=env).stdout
    crashed = len([e for e in events if e.type == "exited"])  # each printed before it exited
    assert log == b"try\n" * log.count(b"try\n")  # the attempts' output, whole lines only
    assert crashed <= log.count(b"try\n") <= len(started)  # the stopped one may not have


def test_a_held_attempt_the_policy_does_not_start_never_runs(data_dir, env):
    tag = f"GHOST_TEST_TAG={uuid.uuid4().hex}"
    tagged_env = {**env, tag.split("=")[0]: tag.split("=")[1]}
    task = run_json("--restart", "on-failure", "--max-restarts", "2", "--restart-delay", "0",
                    "sh", "-c", "echo try; exit 3", env=tagged_env)
    wait_for(lambda: "gave_up" in [e.type for e in task_events(data_dir, task["id"])], 30,
             message="the policy to give up")
    wait_for(lambda: not tagged(tag), 20, message="every process of the task to be gone")
    shown = status_json(task["id"], env)
    assert (shown["status"], shown["exit_code"], shown["attempt"]) == ("exited", 3, 3)
    assert ghost("log", task["id"], env=env).stdout == b"try\n" * 3
    done = run_json("--restart", "on-failure", "--restart-delay", "0", "true", env=tagged_env)
    wait_for(lambda: status_json(done["id"], env)["status"] == "exited", 20)
    wait_for(lambda: not tagged(tag), 20, message="the held next attempt to be reaped")
    assert attempts_of(task_events(data_dir, done["id"])) == [1]


def test_stop_g_wins_over_a_group_of_crash_loops(data_dir, env):
    tag = f"GHOST_TEST_TAG={uuid.uuid4().hex}"
    tagged_env = {**env, tag.split("=")[0]: tag.split("=")[1]}
    loop = "sleep 0.05; exit 1"
    result = ghost("run", "-g", "loops", "--restart", "always", "--restart-delay", "0",
                   *([f"sh -c '{loop}'"] * 5), env=tagged_env)
    assert result.returncode == 0, text(result)
    listed = lambda: json.loads(ghost("list", "--json", "-g", "loops", env=env).stdout)  # noqa: E731
    wait_for(lambda: all(t["attempt"] >= 2 for t in listed()), 30, message="restarts")
    stopped = ghost("stop", "-g", "loops", env=env)
    assert stopped.returncode in (0, 1), text(stopped)
    wait_for(lambda: all(t["status"] in ("exited", "killed") for t in listed()), 20,
             message="every loop to end")
    wait_for(lambda: not tagged(tag), 20, message="every process of the group to be gone")
    for task in listed():
        events = task_events(data_dir, task["id"])
        stop_at = next(i for i, e in enumerate(events) if e.type == "stop_requested")
        assert not [e for e in events[stop_at:] if e.type == "spawned"], task["id"]
        started = attempts_of(events)
        ends = [int(e.data.get("attempt", 1)) for e in events if e.type in ("exited", "killed")]
        assert started == list(range(1, len(started) + 1)) and sorted(ends) == started


def test_stop_of_a_fast_crash_loop_always_wins(data_dir, env):
    """`stop` may find the next attempt already started (end, decision and start are one
    transaction): it stops the attempt its request was recorded for."""
    tag = f"GHOST_TEST_TAG={uuid.uuid4().hex}"
    tagged_env = {**env, tag.split("=")[0]: tag.split("=")[1]}
    for _ in range(3):
        task = run_json("--restart", "always", "--restart-delay", "0", "sh", "-c",
                        "sleep 0.03; exit 1", env=tagged_env)
        wait_for(lambda t=task: status_json(t["id"], env)["attempt"] >= 3, 30,
                 message="restarts")
        stopped = ghost("stop", task["id"], env=env)
        assert stopped.returncode in (0, 1), text(stopped)
        wait_for(lambda t=task: status_json(t["id"], env)["status"] in ("exited", "killed"),
                 20, message="the loop to end")
        events = task_events(data_dir, task["id"])
        stop_at = next(i for i, e in enumerate(events) if e.type == "stop_requested")
        assert not [e for e in events[stop_at:] if e.type == "spawned"]
        started = attempts_of(events)
        ends = [int(e.data.get("attempt", 1)) for e in events if e.type in ("exited", "killed")]
        assert started == list(range(1, len(started) + 1)) and sorted(ends) == started
    wait_for(lambda: not tagged(tag), 20, message="every process to be gone")
