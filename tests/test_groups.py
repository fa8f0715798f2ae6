"""`run --group G` and `-g G` on list, stop, kill, wait, cleanup: the whole group at once."""

from __future__ import annotations

import json

from support import ghost, pid_alive, run_json, status_json, text, wait_ended


def listed(env: dict[str, str], *args: str) -> list[dict]:
    result = ghost("list", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_list_g_shows_only_the_group(data_dir, env):
    web = [run_json("-g", "web", "sleep", "300", env=env) for _ in range(2)]
    other = run_json("sleep", "300", env=env)
    assert {t["id"] for t in listed(env, "-g", "web")} == {t["id"] for t in web}
    assert [t["group"] for t in listed(env, "-g", "default")] == ["default"]
    assert {t["id"] for t in listed(env)} == {other["id"], *(t["id"] for t in web)}


def test_stop_g_stops_every_task_of_the_group_and_nothing_else(data_dir, env):
    web = [run_json("--group", "web", "sleep", "300", env=env) for _ in range(3)]
    other = run_json("sleep", "300", env=env)
    result = ghost("stop", "-g", "web", env=env)
    out, err = text(result)
    assert result.returncode == 0, err
    assert sorted(out.splitlines()) == sorted(f"Process {t['id']} ({t['pid']}) has been exited"
                                              for t in web)
    for task in web:
        assert status_json(task["id"], env)["signal"] == "SIGTERM"
        assert not pid_alive(task["pid"])
    assert status_json(other["id"], env)["status"] == "running"


def test_kill_g_sends_sigkill_to_the_group(data_dir, env):
    web = [run_json("-g", "web", "sleep", "300", env=env) for _ in range(2)]
    result = ghost("kill", "-g", "web", "--json", env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert sorted(t["id"] for t in data) == sorted(t["id"] for t in web)
    assert all(t["ok"] and t["signal"] == "SIGKILL" for t in data)


def test_stop_g_leaves_finished_tasks_alone(data_dir, env):
    done = run_json("-g", "web", "true", env=env)
    wait_ended(done["id"], env)
    running = run_json("-g", "web", "sleep", "300", env=env)
    result = ghost("stop", "-g", "web", env=env)
    out, _ = text(result)
    assert result.returncode == 0  # the finished task was not live: nothing to stop there
    assert out == f"Process {running['id']} ({running['pid']}) has been exited\n"
    again = ghost("stop", "-g", "web", env=env)
    assert again.returncode == 0 and text(again) == ("", "No tasks found in this group.\n")


def test_a_task_id_and_g_are_exclusive(data_dir, env):
    task = run_json("-g", "web", "sleep", "300", env=env)
    for args in (["stop"], ["stop", task["id"], "-g", "web"], ["kill"], ["restart"]):
        result = ghost(*args, env=env)
        assert result.returncode == 2, args
        assert text(result)[1] == "Error: give a task id or name, or -g GROUP (one of them)\n"


def test_an_invalid_group_is_refused(data_dir, env):
    result = ghost("run", "-g", "no spaces", "true", env=env)
    assert result.returncode == 2
    assert text(result) == ("", "Error: invalid --group 'no spaces': use 1-64 letters, "
                                "digits, '.', '_' or '-'\n")


def test_wait_g_waits_for_the_group_and_returns_the_first_failure(data_dir, env):
    run_json("-g", "batch", "sh", "-c", "sleep 0.3; exit 0", env=env)
    run_json("-g", "batch", "sh", "-c", "sleep 0.5; exit 3", env=env)
    run_json("sleep", "300", env=env)  # another group: not waited for
    result = ghost("wait", "-g", "batch", "-t", "30", env=env)
    assert result.returncode == 3, result.stderr
    assert all(t["status"] == "exited" for t in listed(env, "-g", "batch"))


def test_cleanup_g_removes_only_the_group(data_dir, env):
    a = run_json("-g", "a", "true", env=env)
    b = run_json("-g", "b", "true", env=env)
    wait_ended(a["id"], env)
    wait_ended(b["id"], env)
    result = ghost("cleanup", "--all", "-g", "a", env=env)
    assert text(result)[0].startswith("Successfully deleted 1 task(s).\n")
    assert [t["id"] for t in listed(env)] == [b["id"]]
