"""End files (ghost.process.endfile): a waiter keeps its attempt's end in a file before it is
recorded; `stop`/`stop -g` fold them in one transaction, a reader folds the file of a waiter that
died. Every end is recorded exactly once, never through a symlink, and the files go away."""

from __future__ import annotations

import json
import os
import signal

from support import ghost, pid_alive, run_json, status_json, text, wait_ended, wait_for

from events.store import Store
from events.types import EXITED, KILLED, LOST, SPAWNED, Event
from ghost.process.endfold import parse


def events_of(data_dir: str, task_id: str, *types: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.task_events(task_id)
                if isinstance(e, Event) and e.type in types]
    finally:
        store.close()


def monitor_of(data_dir: str, task_id: str) -> int:
    [spawned] = events_of(data_dir, task_id, SPAWNED)
    return int(spawned.data["monitor"]["pid"])


def ends(data_dir: str) -> list[str]:
    path = os.path.join(data_dir, "ends")
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


def test_a_waiter_killed_after_keeping_its_end_gets_that_exact_end_recorded(data_dir, env):
    crash = {**env, "GHOST_TEST_CRASH_AT": "waiter:after-end-file"}
    task = run_json("sh", "-c", "exit 3", env=crash)
    monitor = monitor_of(data_dir, task["id"])
    wait_for(lambda: not pid_alive(monitor), message="the waiter to be killed")
    assert ends(data_dir) == [f"{task['id']}.1"]  # kept, not recorded
    ended = status_json(task["id"], env)  # the reader reconciles: the file, not `lost`
    assert (ended["status"], ended["exit_code"]) == ("exited", 3)
    [end] = events_of(data_dir, task["id"], EXITED, KILLED, LOST)
    assert end.type == EXITED and end.data["rusage"]["utime"] >= 0
    assert ends(data_dir) == []
    assert len(events_of(data_dir, task["id"], EXITED, KILLED, LOST)) == 1


def test_a_torn_end_file_is_not_trusted(data_dir, env):
    crash = {**env, "GHOST_TEST_CRASH_AT": "waiter:after-end-file"}
    task = run_json("sh", "-c", "exit 3", env=crash)
    monitor = monitor_of(data_dir, task["id"])
    wait_for(lambda: not pid_alive(monitor), message="the waiter to be killed")
    path = os.path.join(data_dir, "ends", f"{task['id']}.1")
    with open(path, "rb") as f:
        whole = f.read()
    with open(path, "wb") as f:
        f.write(whole[:-5])  # no newline: cut short
    assert status_json(task["id"], env)["status"] == "unknown"
    assert len(events_of(data_dir, task["id"], LOST)) == 1


def test_parse_accepts_only_a_whole_well_formed_end():
    good = b"ghost-end-1 abc t1 2 256 1796291589279932530 0.5 0.25 1200\n"
    found = parse(good)
    assert found is not None and (found.task, found.attempt, found.status) == ("t1", 2, 256)
    assert found.usage.ru_utime == 0.5 and found.store_id == "abc"
    for bad in (good[:-1], good.replace(b"ghost-end-1", b"ghost-end-9"),
                good.replace(b" 2 ", b" x "), good.replace(b" 256 ", b" 99999999 "),
                b"", b"\n", good + b"x" * 600):
        assert parse(bad) is None, bad


def test_stop_g_records_every_end_once_from_the_files_and_leaves_none(data_dir, env):
    result = ghost("run", "-g", "web", *(f"sleep 300.{i}" for i in range(8)), env=env)
    assert result.returncode == 0, text(result)
    stopped = ghost("stop", "-g", "web", env=env)
    assert stopped.returncode == 0, text(stopped)
    listed = json.loads(ghost("list", "--json", "-g", "web", env=env).stdout)
    assert len(listed) == 8 and {t["status"] for t in listed} == {"killed"}  # exact at once
    for task in listed:
        [end] = events_of(data_dir, task["id"], EXITED, KILLED, LOST)
        assert end.data["signal"] == "SIGTERM" and "rusage" in end.data
        monitor = monitor_of(data_dir, task["id"])
        wait_for(lambda m=monitor: not pid_alive(m), message="the waiters to exit")
    assert ends(data_dir) == []
    for task in listed:  # nobody recorded a second end afterwards
        assert len(events_of(data_dir, task["id"], EXITED, KILLED, LOST)) == 1


def test_a_marked_waiter_whose_stopper_died_records_its_end_itself(data_dir, env):
    task = run_json("sleep", "300", env=env)
    os.makedirs(os.path.join(data_dir, "ends"), mode=0o700, exist_ok=True)
    marker = os.path.join(data_dir, "ends", f"{task['id']}.1.stop")
    os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # a stopper's mark
    os.kill(task["pid"], signal.SIGTERM)  # ... and then the stopper is gone
    ended = wait_ended(task["id"], env, timeout=20)
    assert (ended["status"], ended["signal"]) == ("killed", "SIGTERM")
    monitor = monitor_of(data_dir, task["id"])
    wait_for(lambda: not pid_alive(monitor), message="the waiter to exit")
    assert ends(data_dir) == []
    assert len(events_of(data_dir, task["id"], EXITED, KILLED, LOST)) == 1


def test_end_files_never_go_through_symlinks(data_dir, env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("untouched\n")
    task = run_json("sleep", "300", env=env)
    os.makedirs(os.path.join(data_dir, "ends"), mode=0o700, exist_ok=True)
    os.symlink(victim, os.path.join(data_dir, "ends", f"{task['id']}.1"))
    stopped = ghost("stop", task["id"], env=env)
    assert stopped.returncode == 0, text(stopped)
    assert status_json(task["id"], env)["signal"] == "SIGTERM"
    assert victim.read_text() == "untouched\n"
    # A symlinked ends directory is refused: the end is recorded the slow way, nothing lands
    # outside the data dir.
    assert ends(data_dir) == []
    os.rmdir(os.path.join(data_dir, "ends"))
    os.symlink(outside, os.path.join(data_dir, "ends"))
    other = run_json("sh", "-c", "exit 4", env=env)
    assert wait_ended(other["id"], env)["exit_code"] == 4
    assert sorted(os.listdir(outside)) == ["victim"]


def test_cleanup_deletes_the_end_files_a_cleaned_task_left_behind(data_dir, env):
    done = run_json("sh", "-c", "exit 0", env=env)["id"]
    alive = run_json("sleep", "300", env=env)["id"]
    wait_ended(done, env)
    os.makedirs(os.path.join(data_dir, "ends"), mode=0o700, exist_ok=True)
    # What a waiter killed after its end was recorded (before it deleted its files) leaves.
    left = [f"{done}.1", f"{done}.1.stop", f"{done}.2", f"{alive}.1", f"{done}.notes"]
    for entry in left:
        with open(os.path.join(data_dir, "ends", entry), "w") as f:
            f.write("x")
    assert ghost("cleanup", "--all", env=env).returncode == 0
    # The cleaned task's end files go; another task's, and what is no end file, stay.
    assert ends(data_dir) == sorted([f"{alive}.1", f"{done}.notes"])
    ghost("stop", "--force", alive, env=env)
