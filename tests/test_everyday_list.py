"""Issue 13, `ghost list`/`status`: how tasks ended at a glance, --wide, -n/--since, the cache."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from support import ghost, run_json, status_json, text, wait_ended, wait_for

from ghost.state.listing import CACHE_NAME

# Listens on a TCP port and a UDP port (both picked by the kernel) and says which.
SERVER = """
import socket, sys, time
t = socket.socket(); t.bind(("127.0.0.1", 0)); t.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
print(t.getsockname()[1], u.getsockname()[1], flush=True)
x = bytearray(8 << 20)  # some memory to see
time.sleep(300)
"""


def rows(env: dict[str, str], *args: str) -> list[list[str]]:
    result = ghost("list", *args, env=env)
    out, err = text(result)
    assert result.returncode == 0 and err == "", err
    return [line.split() for line in out.splitlines()[2:]]


def listed_ids(env: dict[str, str], *args: str) -> list[str]:
    result = ghost("list", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    return [t["id"] for t in json.loads(result.stdout)]


def test_list_and_status_say_how_each_task_ended(data_dir, env):
    done = run_json("sh", "-c", "exit 3", env=env)
    ok = run_json("true", env=env)
    stopped = run_json("sleep", "300", env=env)
    wait_ended(done["id"], env)
    wait_ended(ok["id"], env)
    assert ghost("stop", stopped["id"], env=env).returncode == 0
    killed = run_json("sh", "-c", "kill -KILL $$", env=env)
    wait_ended(killed["id"], env)
    running = run_json("sleep", "300", env=env)
    table = text(ghost("list", env=env))[0].splitlines()
    assert table[0].split()[:4] == ["Task", "ID", "PID", "Status"]  # first three columns
    by_id = {line.split()[0]: line.split() for line in table[2:]}
    shown = {t["id"]: by_id[t["id"]][2:4] for t in (done, ok, stopped, killed)}
    assert shown == {done["id"]: ["exited", "(3)"], ok["id"]: ["exited", "(0)"],
                     stopped["id"]: ["killed", "(SIGTERM)"],
                     killed["id"]: ["killed", "(SIGKILL)"]}
    assert by_id[running["id"]][1:3] == [str(running["pid"]), "running"]
    # a script matching the status word in the third column keeps working
    assert sorted(r[0] for r in rows(env) if r[2] == "exited") == sorted([done["id"], ok["id"]])
    lines = text(ghost("status", done["id"], env=env))[0].splitlines()
    assert "Status: exited (3)" in lines and "Exit code: 3" in lines
    assert "Status: killed (SIGTERM)" in text(ghost("status", stopped["id"], env=env))[0]


def test_last_n_and_since(data_dir, env):
    started = [run_json("true", env=env) for _ in range(4)]
    newest_first = [t["id"] for t in reversed(started)]
    assert [r[0] for r in rows(env, "-n", "2")] == newest_first[:2]
    assert [r[0] for r in rows(env, "--last", "10")] == newest_first
    assert listed_ids(env, "-n", "3") == newest_first[:3]
    assert [r[0] for r in rows(env, "--since", "1h")] == newest_first
    assert listed_ids(env, "--since", "1h", "-n", "1") == newest_first[:1]
    future = ghost("list", "--since", "2200-01-01", env=env)
    assert text(future) == ("No tasks found.\n", "")
    assert ghost("list", "-s", "exited", "-n", "1", env=env).returncode == 0
    for bad in (("-n", "0"), ("--last", "x"), ("--since", "not a time")):
        result = ghost("list", *bad, env=env)
        err = text(result)[1]
        assert result.returncode == 2 and err.startswith("Error: ") and err.count("\n") == 1


def test_wide_shows_cpu_memory_uptime_and_ports(data_dir, env):
    server = run_json(sys.executable, "-c", SERVER, env=env)
    log = server["log_path"]
    ports = wait_for(lambda: os.path.exists(log) and Path(log).read_text().split(), 20,
                     message="the server's ports")
    tcp, udp = map(int, ports)
    finished = run_json("true", env=env)
    wait_ended(finished["id"], env)
    data = {t["id"]: t for t in json.loads(ghost("list", "--wide", "--json", env=env).stdout)}
    used = data[server["id"]]["resources"]
    assert data[finished["id"]]["resources"] is None
    assert {"proto": "tcp", "address": "127.0.0.1", "port": tcp} in used["ports"]
    assert {"proto": "udp", "address": "127.0.0.1", "port": udp} in used["ports"]
    assert used["processes"] == 1 and used["rss_bytes"] > 8 << 20
    assert 0 <= used["cpu_percent"] <= 200 and used["uptime_s"] >= 0
    assert "resources" not in json.loads(ghost("list", "--json", env=env).stdout)[0]
    table = text(ghost("list", "--wide", env=env))[0].splitlines()
    assert table[0].split()[:8] == ["Task", "ID", "PID", "Status", "CPU", "Memory", "Uptime",
                                    "Ports"]
    row = next(line for line in table if line.startswith(server["id"]))
    assert f"tcp:{tcp}" in row and f"udp:{udp}" in row and "MiB" in row
    lines = text(ghost("status", "--wide", server["id"], env=env))[0].splitlines()
    assert f"Ports: tcp 127.0.0.1:{tcp}, udp 127.0.0.1:{udp}" in lines
    assert any(line.startswith("Memory: ") and "(1 process)" in line for line in lines)
    assert any(line.startswith("CPU: ") for line in lines)
    assert status_json(server["id"], env).get("resources") is None  # only with --wide
    wide = json.loads(ghost("status", "--wide", "--json", server["id"], env=env).stdout)
    assert wide["resources"]["ports"] == used["ports"]


def test_list_follows_every_change_through_its_cache(data_dir, env):
    """The list cache (ghost.state.listing) never shows what the event log does not say."""
    first = run_json("sleep", "300", env=env)
    assert rows(env)[0][2] == "running"
    cache = os.path.join(data_dir, "store", CACHE_NAME)
    assert os.path.isfile(cache) and os.stat(cache).st_mode & 0o777 == 0o600
    assert ghost("kill", first["id"], env=env).returncode == 0
    assert rows(env)[0][2:4] == ["killed", "(SIGKILL)"]
    more = [run_json("sh", "-c", f"exit {n}", env=env)["id"] for n in range(3)]
    for task in more:
        wait_ended(task, env)
    assert [r[0] for r in rows(env)] == [*reversed(more), first["id"]]
    assert ghost("cleanup", "--all", env=env).returncode == 0
    assert text(ghost("list", env=env))[0] == "No tasks found.\n"
    again = run_json("sh", "-c", "exit 7", env=env)
    wait_ended(again["id"], env)
    assert [r[:4] for r in rows(env)] == [[again["id"], str(again["pid"]), "exited", "(7)"]]
    with open(cache, "wb") as f:  # damaged: rebuilt from the store, same answer
        f.write(b"\x93garbage")
    assert [r[:4] for r in rows(env)] == [[again["id"], str(again["pid"]), "exited", "(7)"]]
    target = os.path.join(data_dir, "target")
    with open(target, "wb") as f:
        f.write(b"untouched")
    os.unlink(cache)
    os.symlink(target, cache)  # planted: never read through nor written through
    assert [r[0] for r in rows(env)] == [again["id"]]
    assert Path(target).read_bytes() == b"untouched"
    assert not os.path.islink(cache)


def test_many_events_between_two_lists(data_dir, env):
    """More events than the cache folds cheaply (REWRITE_AFTER) and a task that ended after the
    cache was written: same rows as the full view (`--json` reads the view itself)."""
    from events.store import Store
    from events.types import EXITED, SPAWNED, make
    from projections.checkpoint import VIEWS

    run_json("true", env=env)
    rows(env)  # the cache now exists
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    try:
        batch = []
        for n in range(100):
            task = f"planted-{n:04d}-{time.time_ns()}"
            batch.append(make(SPAWNED, task, command=["planted", str(n)], cwd="/",
                              pid=2**22 - 5, pgid=2**22 - 5, start_ticks=1, boot_id="",
                              log_path=f"/nonexistent/{task}.log"))
            if n % 2:
                batch.append(make(EXITED, task, code=n % 7, end_ns=time.time_ns()))
        store.append(batch)
    finally:
        store.close()
    table = {r[0]: r[2:4] for r in rows(env)}
    full = json.loads(ghost("list", "--json", env=env).stdout)
    assert len(table) == len(full) == 101
    for task in full:  # planted running tasks have no process: recorded `unknown` by list
        shown = table[task["id"]]
        assert shown[0] == task["status"]
        if task["status"] == "exited":
            assert shown[1] == f"({task['exit_code']})"


@pytest.mark.parametrize("args", [("list", "--help"), ("--help",)])
def test_help_says_order_last_data_dir_and_completion(env, args):
    out = text(ghost(*args, env=env))[0]
    if args[0] == "list":
        assert "newest first" in out and "--last N" in out and "--since" in out
        assert "--wide" in out
    else:
        assert "GHOST_DATA_DIR" in out and "ghost completion" in out


def test_mcp_tools_show_resources(data_dir, env):
    from mcp_support import Client, ok, serve

    server = run_json(sys.executable, "-c", SERVER, env=env)
    log = server["log_path"]
    tcp = int(wait_for(lambda: os.path.exists(log) and Path(log).read_text().split(), 20,
                       message="the server's ports")[0])

    async def body(client: Client) -> None:
        status = await ok(client, "ghost_status", id=server["id"])
        assert {"proto": "tcp", "address": "127.0.0.1", "port": tcp} in \
            status["resources"]["ports"]
        listed = await ok(client, "ghost_list", wide=True)
        [shown] = [t for t in listed["tasks"] if t["id"] == server["id"]]
        assert shown["resources"]["rss_bytes"] > 0
        plain = await ok(client, "ghost_list")
        assert "resources" not in plain["tasks"][0]

    serve(env, body)
