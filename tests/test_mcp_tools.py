"""`ghost mcp` tools end to end: the SDK's own client drives a real server over stdio.

Every test starts `python -m ghost mcp` as a subprocess with the test's GHOST_DATA_DIR; the
data_dir fixture kills every task recorded in the store afterwards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio
from mcp_support import TOOLS, Client, error, ok, serve
from support import ghost


def test_tools_are_listed_with_input_schemas(env):
    async def body(client: Client) -> None:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        run = tools["ghost_run"].input_schema
        assert run["type"] == "object" and run["required"] == ["command"]
        assert run["properties"]["command"]["type"] == "string"
        args = run["properties"]["args"]["anyOf"][0]
        assert args == {"type": "array", "items": {"type": "string"}}
        assert run["properties"]["env"]["anyOf"][0]["additionalProperties"] == {"type": "string"}
        status = tools["ghost_list"].input_schema["properties"]["status"]
        assert set(status["enum"]) == {"all", "running", "exited", "killed", "unknown",
                                       "queued", "restarting"}
        log = tools["ghost_log"].input_schema["properties"]
        assert log["tail"]["default"] == 200 and log["max_bytes"]["default"] == 65536
        stop = tools["ghost_stop"].input_schema
        assert stop["required"] == ["id"]
        assert stop["properties"]["force"]["default"] is False
        assert stop["properties"]["timeout"]["default"] == 10.0
        assert tools["ghost_wait"].input_schema["properties"]["timeout"]["default"] == 60.0
        assert "required" not in tools["ghost_history"].input_schema
        for tool in tools.values():
            assert tool.description and tool.output_schema["type"] == "object"
        assert tools["ghost_run"].annotations.destructive_hint is True
        assert tools["ghost_list"].annotations.read_only_hint is True

    serve(env, body)


def test_run_list_status_log_history(env, tmp_path):
    script = "echo out; echo err >&2; exit 3"

    async def body(client: Client) -> None:
        started = await ok(client, "ghost_run", command="sh", args=["-c", script],
                           cwd=str(tmp_path), env={"GHOST_SECRET": "hunter2"})
        task_id = started["id"]
        assert started["status"] == "running" and started["cwd"] == str(tmp_path)
        assert started["command"] == ["sh", "-c", script]
        assert os.path.isabs(started["log_path"]) and started["pid"] > 0

        waited = await ok(client, "ghost_wait", id=task_id[:8], timeout=30)
        assert waited["ended"] is True and waited["timed_out"] is False
        assert waited["task"]["exit_code"] == 3

        listed = await ok(client, "ghost_list", status="exited")
        assert [t["id"] for t in listed["tasks"]] == [task_id] and listed["total"] == 1
        assert (await ok(client, "ghost_list", status="running"))["tasks"] == []

        status = await ok(client, "ghost_status", id=task_id)
        assert status["status"] == "exited" and status["exit_code"] == 3
        assert status["signal"] is None and status["finished_at"]

        log = await ok(client, "ghost_log", id=task_id)
        assert sorted(log["text"].splitlines()) == ["err", "out"]
        assert log["truncated"] is False and log["running"] is False

        history = (await ok(client, "ghost_history", id=task_id))["events"]
        assert [e["type"] for e in history] == ["spawned", "exited"]
        assert history[0]["actor"]["via"] == "mcp" and history[0]["env_keys"] == ["GHOST_SECRET"]
        assert history[1]["code"] == 3
        everything = await ok(client, "ghost_history")
        assert "hunter2" not in json.dumps(everything) + json.dumps(listed)

    serve(env, body)
    cli = json.loads(ghost("list", "--json", env=env).stdout)
    assert [(t["status"], t["exit_code"]) for t in cli] == [("exited", 3)]


def test_log_is_bounded_and_invalid_utf8_replaced(env):
    # 4,000 numbered lines (~70 KB), then bytes that are not UTF-8.
    writer = ("import sys; out = sys.stdout.buffer\n"
              "for i in range(4000): out.write(b'line %05d ............\\n' % i)\n"
              "out.write(b'bad \\xff\\xfe end\\n')")

    async def body(client: Client) -> None:
        task_id = (await ok(client, "ghost_run", command=sys.executable,
                            args=["-c", writer]))["id"]
        await ok(client, "ghost_wait", id=task_id, timeout=30)

        default = await ok(client, "ghost_log", id=task_id)
        lines = default["text"].splitlines()
        assert len(lines) == 200 and default["truncated"] is True
        assert lines[-1] == "bad \ufffd\ufffd end" and lines[0] == "line 03801 ............"

        small = await ok(client, "ghost_log", id=task_id, tail=None, max_bytes=1000)
        assert small["truncated"] is True and len(small["text"].encode()) <= 1000
        assert small["end"] - small["start"] <= 1000 and small["text"].endswith("end\n")

        three = await ok(client, "ghost_log", id=task_id, tail=3)
        assert three["text"].splitlines() == ["line 03998 ............",
                                              "line 03999 ............", "bad \ufffd\ufffd end"]

        everything = await ok(client, "ghost_log", id=task_id, tail=None, max_bytes=1 << 20)
        assert everything["truncated"] is False and everything["start"] == 0
        assert everything["text"].count("\n") == 4001

    serve(env, body)


def test_log_of_binary_output_stays_within_max_bytes(env):
    async def body(client: Client) -> None:
        task_id = (await ok(client, "ghost_run", command=sys.executable, args=[
            "-c", "import sys; sys.stdout.buffer.write(bytes([255]) * 5000)"]))["id"]
        await ok(client, "ghost_wait", id=task_id, timeout=30)
        log = await ok(client, "ghost_log", id=task_id, max_bytes=999)
        # Every byte becomes U+FFFD (3 bytes in UTF-8); the bound still holds.
        assert log["truncated"] is True and 0 < len(log["text"].encode()) <= 999
        assert set(log["text"]) == {"\ufffd"}

        # A whole command line in `command` is split like a shell would (no shell runs).
        started = await ok(client, "ghost_run", command="echo 'two  words' three")
        assert started["command"] == ["echo", "two  words", "three"]
        await ok(client, "ghost_wait", id=started["id"], timeout=30)
        assert (await ok(client, "ghost_log", id=started["id"]))["text"] == "two  words three\n"

    serve(env, body)


def test_stop_records_the_end_and_wait_times_out(env):
    async def body(client: Client) -> None:
        task_id = (await ok(client, "ghost_run", command="sleep", args=["60"]))["id"]
        waited = await ok(client, "ghost_wait", id=task_id, timeout=0.3)
        assert waited == {**waited, "ended": False, "timed_out": True}
        assert waited["task"]["status"] == "running"

        # A long wait in flight blocks nothing: list and stop answer, and the wait wakes up
        # with the end the stop recorded.
        waits: list[dict[str, Any]] = []

        async def wait_long() -> None:
            waits.append(await ok(client, "ghost_wait", id=task_id, timeout=120))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(wait_long)
            await anyio.sleep(0.2)
            assert (await ok(client, "ghost_list", status="running"))["total"] == 1
            stopped = await ok(client, "ghost_stop", id=task_id)
        assert [w["ended"] for w in waits] == [True] * 3
        assert {w["task"]["signal"] for w in waits} == {"SIGTERM"}
        assert stopped["summary"] == "killed by SIGTERM"
        assert stopped["task"]["status"] == "killed" and stopped["task"]["signal"] == "SIGTERM"

        text = await error(client, "ghost_stop", id=task_id)
        assert f"task {task_id} is not running (killed by SIGTERM)" in text

        forced = (await ok(client, "ghost_run", command="sleep", args=["60"]))["id"]
        stopped = await ok(client, "ghost_stop", id=forced, force=True)
        assert stopped["task"]["signal"] == "SIGKILL"

        history = (await ok(client, "ghost_history", id=task_id))["events"]
        assert [e["type"] for e in history] == ["spawned", "stop_requested", "killed"]
        assert history[1]["actor"]["via"] == "mcp" and history[1]["signal"] == "SIGTERM"

    serve(env, body)
    cli = {t["status"] for t in json.loads(ghost("list", "--json", env=env).stdout)}
    assert cli == {"killed"}


def _record_finished_tasks(data_dir: str, task_ids: list[str]) -> None:
    """Put finished tasks with chosen ids straight into the store (ids sharing a prefix)."""
    from events import types as ev
    from events.store import Store
    from ghost import datadir as paths
    from projections.checkpoint import VIEWS

    paths.prepare(create=True)
    store = Store.open(paths.store_dir(), create=True, views=VIEWS)
    assert store is not None
    try:
        for task_id in task_ids:
            store.append([
                ev.make(ev.SPAWNED, task_id, command=["true"], cwd="/", pid=2_000_000_000,
                        pgid=2_000_000_000, start_ticks=1, boot_id="test",
                        log_path=paths.log_path(task_id)),
                ev.make(ev.EXITED, task_id, code=0, end_ns=time.time_ns()),
            ])
    finally:
        store.close()


def test_errors_are_tool_results_and_the_server_keeps_serving(env, data_dir, tmp_path):
    _record_finished_tasks(data_dir, ["abcd1111-0000-4000-8000-000000000001",
                                      "abcd2222-0000-4000-8000-000000000002"])

    async def body(client: Client) -> None:
        for tool in ("ghost_status", "ghost_log", "ghost_stop", "ghost_wait", "ghost_history"):
            text = await error(client, tool, id="zzzz9999")
            assert "task zzzz9999 not found; call ghost_list" in text, (tool, text)
        text = await error(client, "ghost_status", id="abcd")
        assert "task id prefix abcd is ambiguous" in text
        assert "abcd1111-0000-4000-8000-000000000001" in text
        assert "abcd2222-0000-4000-8000-000000000002" in text
        text = await error(client, "ghost_run", command="ghost-no-such-command-xyz")
        assert "command not found: ghost-no-such-command-xyz" in text
        text = await error(client, "ghost_run", command="true", cwd=str(tmp_path / "missing"))
        assert f"working directory {tmp_path / 'missing'} does not exist" in text
        text = await error(client, "ghost_run", command="true", env={"A=B": "x"})
        assert "invalid environment variable name 'A=B'" in text
        text = await error(client, "ghost_stop", id="abcd1111")
        assert "is not running (exited with code 0)" in text
        assert await error(client, "ghost_list", status="sleeping")
        assert await error(client, "ghost_log", id="abcd1111", max_bytes=0)
        for text in [await error(client, "ghost_status", id="x")]:
            assert "\n" not in text
        # Still serving, and the refused start is on record as spawn_failed.
        listed = await ok(client, "ghost_list")
        assert listed["total"] == 2
        kinds = [e["type"] for e in (await ok(client, "ghost_history"))["events"]]
        assert kinds.count("spawn_failed") == 3

    serve(env, body)


def test_history_is_the_event_feed_bounded_and_filtered(env, data_dir):
    from events import types as ev
    from events.store import Store
    from ghost import datadir as paths
    from projections.checkpoint import VIEWS

    now = time.time_ns()
    old = now - 2 * 86400 * 10**9
    # 5,000 refused starts (no process to clean up afterwards): 4,000 stamped two days ago,
    # the last 1,000 now; reading them back crosses several read chunks.
    events = [ev.Event(ev.SPAWN_FAILED, f"{i:08d}-0000-4000-8000-000000000000",
                       {"command": ["nope", str(i)], "cwd": "/", "error": "command not found",
                        "exit_code": 127}, old if i < 4000 else now, 1) for i in range(5000)]
    paths.prepare(create=True)
    store = Store.open(paths.store_dir(), create=True, views=VIEWS)
    assert store is not None
    try:
        store.append(events)
    finally:
        store.close()
    feed = [json.loads(line) for line in ghost("events", env=env).stdout.splitlines()]
    assert len(feed) == 5000

    async def body(client: Client) -> None:
        last = await ok(client, "ghost_history", limit=3)
        assert last == {"events": feed[-3:], "truncated": True}
        recent = await ok(client, "ghost_history", since="1d", limit=5000)
        assert recent["truncated"] is False
        assert [e["seq"] for e in recent["events"]] == list(range(4001, 5001))
        one = await ok(client, "ghost_history", id="00000007")
        assert one == {"events": [feed[7]], "truncated": False}
        assert one["events"][0]["command"] == ["nope", "7"]
        assert (await ok(client, "ghost_history", id="00000007", since="1d"))["events"] == []

    serve(env, body)
