"""`run --name` and `run --key`: validation, resolution, and exactness under concurrency."""

from __future__ import annotations

import json
import subprocess

import pytest
from support import GHOST, ghost, run_json, status_json, text, wait_ended

from events.store import Store
from events.types import SPAWN_FAILED, SPAWNED, Event


def events_of(data_dir: str, *types: str) -> list[Event]:
    store = Store.open(f"{data_dir}/store", create=False)
    if store is None:
        return []
    try:
        return [e for e in store.scan() if isinstance(e, Event) and e.type in types]
    finally:
        store.close()


def concurrently(args: list[str], env: dict[str, str], n: int = 20) -> list[tuple[int, str, str]]:
    """Start `n` `ghost ARGS` at once; (exit code, stdout, stderr) of each."""
    procs = [subprocess.Popen([*GHOST, *args], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(n)]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        out.append((proc.returncode, stdout.decode(), stderr.decode()))
    return out


def test_a_name_works_wherever_an_id_does(data_dir, env):
    task = run_json("--name", "web", "sh", "-c", "echo hello; sleep 300", env=env)
    assert task["name"] == "web"
    shown = status_json("web", env)
    assert (shown["id"], shown["name"], shown["group"]) == (task["id"], "web", "default")
    listed = json.loads(ghost("list", "--json", env=env).stdout)
    assert [(t["id"], t["name"]) for t in listed] == [(task["id"], "web")]
    table = text(ghost("list", env=env))[0].splitlines()
    assert table[0].split()[:5] == ["Task", "ID", "PID", "Status", "Name"]
    assert "web" in table[2].split()
    result = ghost("stop", "web", env=env)
    assert result.returncode == 0, result.stderr
    assert text(result)[0] == f"Process {task['id']} ({task['pid']}) has been exited\n"
    assert ghost("log", "web", env=env).stdout == b"hello\n"
    history = text(ghost("history", "web", env=env))[0]
    assert "spawned" in history and "name web" in history


@pytest.mark.parametrize("bad", ["bad name", "x" * 65, "a/b", "", "naïve"])
def test_an_invalid_name_is_refused_with_exit_2(data_dir, env, bad):
    result = ghost("run", "--name", bad, "true", env=env)
    out, err = text(result)
    assert result.returncode == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("Error: invalid --name ")
    assert repr(bad) in err
    assert events_of(data_dir, SPAWNED) == []


def test_the_name_of_a_running_task_is_refused(data_dir, env):
    first = run_json("--name", "web", "sleep", "300", env=env)
    result = ghost("run", "--name", "web", "sleep", "300", env=env)
    out, err = text(result)
    assert result.returncode == 1
    assert err == (f"Error: the name web is in use by running task {first['id']} "
                   "(running)\n")
    assert len(events_of(data_dir, SPAWNED)) == 1
    assert events_of(data_dir, SPAWN_FAILED), "the refusal is in the audit trail"


def test_a_finished_name_is_reused_and_then_means_the_newest(data_dir, env):
    first = run_json("--name", "job", "true", env=env)
    wait_ended(first["id"], env)
    second = run_json("--name", "job", "sleep", "300", env=env)
    assert status_json("job", env)["id"] == second["id"]
    assert status_json(first["id"], env)["name"] == "job"


def test_an_id_prefix_wins_over_a_name(data_dir, env):
    first = run_json("sleep", "300", env=env)
    prefix = first["id"][:8]
    second = run_json("--name", prefix, "sleep", "300", env=env)
    assert status_json(prefix, env)["id"] == first["id"]  # the prefix, not the name
    ghost("kill", first["id"], env=env)
    assert status_json(second["id"], env)["name"] == prefix


def test_twenty_concurrent_runs_with_one_name_start_one_task(data_dir, env):
    results = concurrently(["run", "--name", "web", "sleep", "300"], env)
    ok = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] != 0]
    assert len(ok) == 1, results
    assert len(refused) == 19
    assert all(r[0] == 1 and r[2].startswith("Error: the name web is in use") for r in refused)
    assert len(events_of(data_dir, SPAWNED)) == 1
    listed = json.loads(ghost("list", "--json", env=env).stdout)
    assert [t["name"] for t in listed if t["status"] == "running"] == ["web"]


def test_a_run_key_starts_the_task_once(data_dir, env):
    first = run_json("--key", "deploy-42", "sleep", "300", env=env)
    again = run_json("--key", "deploy-42", "sleep", "300", env=env)
    assert again["id"] == first["id"] and again["existing"] is True
    assert "existing" not in first
    block = text(ghost("run", "--key", "deploy-42", "sleep", "300", env=env))[0]
    assert f"Task ID: {first['id']}" in block
    assert len(events_of(data_dir, SPAWNED)) == 1


def test_a_cleaned_task_frees_its_key(data_dir, env):
    first = run_json("--key", "k", "true", env=env)
    wait_ended(first["id"], env)
    assert ghost("cleanup", "--all", env=env).returncode == 0
    second = run_json("--key", "k", "true", env=env)
    assert second["id"] != first["id"] and "existing" not in second


def test_twenty_concurrent_runs_with_one_key_start_one_process(data_dir, env):
    results = concurrently(["run", "--json", "--key", "k", "sleep", "300"], env)
    assert all(r[0] == 0 for r in results), results
    ids = {json.loads(r[1])["id"] for r in results}
    assert len(ids) == 1
    assert len(events_of(data_dir, SPAWNED)) == 1
    assert sum(1 for r in results if "existing" in json.loads(r[1])) == 19
