"""`ghost cleanup`: which finished tasks go, dry runs, logs deleted, audit trail kept."""

from __future__ import annotations

import json
import os

import pytest
from support import ghost, run_json, text, wait_ended

from events.store import Store
from events.types import CLEANED, Event

NOTHING = "No tasks found matching cleanup criteria.\n"
# S0's lines after `cleanup --all` (issue 13)
ALL = "Successfully deleted {} task(s).\nDeleted all finished tasks regardless of age.\n"


def listed_ids(env: dict[str, str]) -> set[str]:
    return {t["id"] for t in json.loads(ghost("list", "--json", env=env).stdout)}


def cleaned_events(data_dir: str) -> list[Event]:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return [e for e in store.scan() if isinstance(e, Event) and e.type == CLEANED]
    finally:
        store.close()


@pytest.fixture
def mixed(data_dir, env) -> dict[str, dict]:
    """One running, one exited (code 3) and one killed task, with logs written."""
    tasks = {
        "running": run_json("sh", "-c", "echo running; sleep 300", env=env),
        "exited": run_json("sh", "-c", "echo exited; exit 3", env=env),
        "killed": run_json("sh", "-c", "echo killed; kill -KILL $$", env=env),
    }
    for name in ("exited", "killed"):
        assert wait_ended(tasks[name]["id"], env)["status"] == name
    return tasks


def cleanup(env: dict[str, str], *args: str) -> str:
    result = ghost("cleanup", *args, env=env)
    out, err = text(result)
    assert result.returncode == 0 and err == "", err
    return out


def test_age_filter_and_dry_run(data_dir, env, mixed):
    everything = set(listed_ids(env))
    # Tasks that ended moments ago are younger than any positive age.
    assert cleanup(env) == NOTHING
    assert cleanup(env, "--days", "36500") == NOTHING
    out = cleanup(env, "--days", "0", "--dry-run")
    lines = out.splitlines()
    assert lines[0] == "The following 2 task(s) would be deleted:"
    assert lines[1].startswith("Task ID") and set(lines[2]) == {"-"}
    shown = {line.split()[0] for line in lines[3:]}
    assert shown == {mixed["exited"]["id"], mixed["killed"]["id"]}
    assert listed_ids(env) == everything
    assert all(os.path.exists(t["log_path"]) for t in mixed.values())
    assert cleaned_events(data_dir) == []


def test_real_cleanup_removes_tasks_and_logs(data_dir, env, mixed):
    assert cleanup(env, "-d", "0") == "Successfully deleted 2 task(s).\n"
    assert listed_ids(env) == {mixed["running"]["id"]}
    for name in ("exited", "killed"):
        assert not os.path.exists(mixed[name]["log_path"])
        status = ghost("status", mixed[name]["id"], env=env)
        assert status.returncode == 1
        assert "not found" in text(status)[1] and "cleaned" in text(status)[1]
    assert os.path.exists(mixed["running"]["log_path"])
    assert {e.task for e in cleaned_events(data_dir)} == {mixed["exited"]["id"],
                                                           mixed["killed"]["id"]}
    assert all(e.data["log_removed"] for e in cleaned_events(data_dir))
    assert cleanup(env, "--all") == NOTHING


def test_all_and_status_filters(data_dir, env, mixed):
    out = cleanup(env, "--all", "--status", "killed", "-n")
    assert out.startswith("The following 1 task(s) would be deleted:\n")
    assert mixed["killed"]["id"] in out and mixed["exited"]["id"] not in out
    assert cleanup(env, "-a", "-s", "unknown") == NOTHING
    assert cleanup(env, "--all", "--status", "killed") == ALL.format(1)
    assert listed_ids(env) == {mixed["running"]["id"], mixed["exited"]["id"]}
    assert cleanup(env, "--all", "-s", "exited") == ALL.format(1)
    assert cleanup(env, "--all", "--status", "all") == NOTHING


def test_running_tasks_are_never_touched(data_dir, env, mixed):
    cleanup(env, "--all", "--days", "0")
    running = mixed["running"]
    [row] = json.loads(ghost("list", "--json", env=env).stdout)
    assert (row["id"], row["status"]) == (running["id"], "running")
    assert os.path.exists(running["log_path"])
    assert running["id"] not in {e.task for e in cleaned_events(data_dir)}


@pytest.mark.parametrize("args", [("--days", "-1"), ("--status", "bogus")])
def test_bad_arguments(data_dir, env, args):
    result = ghost("cleanup", *args, env=env)
    out, err = text(result)
    assert result.returncode == 2 and out == ""
    assert len(err.splitlines()) == 1 and err.startswith("Error: ") and args[1] in err


def test_running_is_refused_with_s0_words(data_dir, env, mixed):
    """S0: `Error: Cannot cleanup running tasks`, exit 1; nothing is cleaned."""
    for args in (("--status", "running"), ("-a", "-s", "running"), ("-n", "-s", "running")):
        result = ghost("cleanup", *args, env=env)
        assert (result.returncode, text(result)) == (1, ("", "Error: Cannot cleanup running "
                                                              "tasks\n"))
    assert cleaned_events(data_dir) == []


def test_nothing_recorded_yet(data_dir, env):
    assert cleanup(env, "--all") == NOTHING
    assert not os.path.exists(data_dir)
