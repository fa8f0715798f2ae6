"""`ghost mcp` end to end: the SDK's own client drives a real server over stdio.

Every test starts `python -m ghost mcp` as a subprocess with the test's GHOST_DATA_DIR; the
data_dir fixture kills every task recorded in the store afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from support import GHOST, ghost, pid_alive, status_json, wait_for

pytest.importorskip("mcp.server.mcpserver")

from mcp import Client, StdioServerParameters  # noqa: E402

TOOLS = {"ghost_run", "ghost_list", "ghost_status", "ghost_stop", "ghost_log", "ghost_wait",
         "ghost_history"}


@asynccontextmanager
async def session(env: dict[str, str]) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=["-m", "ghost", "mcp"],
                                   env=env)
    async with Client(params) as client:
        yield client


def serve(env: dict[str, str], body: Callable[[Client], Awaitable[None]]) -> None:
    async def main() -> None:
        async with session(env) as client:
            await body(client)

    anyio.run(main)


async def ok(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = result.content[0].text
    return text


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
        assert set(status["enum"]) == {"all", "running", "exited", "killed", "unknown"}
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


def _children(pid: int) -> list[tuple[int, str, str]]:
    """(pid, state, command name) of the direct children of `pid`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
        fields = raw[raw.rindex(b")") + 2:].split()
        if int(fields[1]) == pid:
            found.append((int(entry), fields[0].decode(), name))
    return found


def _server_pid() -> int:
    """The `ghost mcp` process the client started: a child of this test process."""
    for pid, _, _ in _children(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"ghost" in argv and b"mcp" in argv:
            return pid
    raise AssertionError("no ghost mcp child process")


def test_a_hundred_runs_leave_no_zombies(env):
    async def body(client: Client) -> None:
        ids: list[str] = []

        async def run_one() -> None:
            ids.append((await ok(client, "ghost_run", command="true"))["id"])

        for _ in range(10):  # ten concurrent calls at a time: worker threads share the store
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(run_one)
        assert len(set(ids)) == 100
        server = _server_pid()
        zombies = [c for c in _children(server) if c[1] == "Z"]
        assert zombies == []

        async def all_ended() -> dict[str, Any]:
            return await ok(client, "ghost_list", status="running")

        deadline = time.monotonic() + 60
        while (await all_ended())["total"]:
            assert time.monotonic() < deadline, "tasks still running after 60 s"
            await anyio.sleep(0.1)
        listed = await ok(client, "ghost_list", limit=1000)
        assert listed["total"] == 100
        assert {(t["status"], t["exit_code"]) for t in listed["tasks"]} == {("exited", 0)}
        assert [c for c in _children(server) if c[1] == "Z"] == []

    serve(env, body)


class RawServer:
    """`ghost mcp` spoken to in newline-delimited JSON-RPC: every stdout line is checked."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([*GHOST, "mcp"], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.next_id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "test", "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server closed stdout"
            message = json.loads(line)  # anything but a protocol message fails here
            assert message["jsonrpc"] == "2.0"
            if message.get("id") == self.next_id:
                assert "result" in message, message
                return message["result"]

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        assert not result.get("isError"), result
        return result["structuredContent"]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def test_chatty_task_never_reaches_the_protocol_stream(env):
    server = RawServer(env)
    try:
        chatty = server.call("ghost_run", command="yes", args=["NOT-JSON " * 20])["id"]
        for i in range(40):
            assert server.call("ghost_status", id=chatty)["status"] == "running"
            log = server.call("ghost_log", id=chatty, tail=5, max_bytes=4096)
            assert log["text"].startswith("NOT-JSON") or i < 3
            server.call("ghost_list")
        assert server.call("ghost_stop", id=chatty)["task"]["status"] == "killed"
    finally:
        server.kill()


def test_closing_stdin_ends_the_server_and_tasks_keep_running(env, data_dir):
    server = RawServer(env)
    try:
        started = server.call("ghost_run", command="sleep", args=["60"])
        assert server.proc.stdin is not None
        server.proc.stdin.close()
        assert server.proc.wait(timeout=20) == 0
        assert server.proc.stdout is not None and server.proc.stdout.read() == b""
        assert pid_alive(started["pid"])
        assert status_json(started["id"], env)["status"] == "running"
    finally:
        server.kill()
    log = os.path.join(data_dir, "logs", "mcp.log")
    assert os.stat(log).st_mode & 0o777 == 0o600
    with open(log, encoding="utf-8") as f:
        text = f.read()
    assert "started" in text and "ghost_run done" in text and "stdin closed" in text


def test_a_client_that_stops_reading_ends_the_server_quietly(env, data_dir):
    server = RawServer(env)
    try:
        assert server.proc.stdout is not None and server.proc.stdin is not None
        server.proc.stdout.close()
        server.send({"jsonrpc": "2.0", "id": 99, "method": "tools/call",
                     "params": {"name": "ghost_list", "arguments": {}}})

        def exited() -> bool:
            # The server's stdin reader wakes up only for a new line: keep feeding harmless
            # notifications (stdin stays open) until the broken pipe has ended the server.
            if server.proc.poll() is None:
                try:
                    server.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                except BrokenPipeError:
                    pass
            return server.proc.poll() is not None

        wait_for(exited, 20, interval=0.05, message="the server to end on the closed pipe")
        assert server.proc.returncode == 0
        assert _logged(data_dir, "client closed its end of stdout")
        assert server.proc.stderr is not None and server.proc.stderr.read() == b""
    finally:
        server.kill()


def _logged(data_dir: str, text: str) -> bool:
    with open(os.path.join(data_dir, "logs", "mcp.log"), encoding="utf-8") as f:
        return text in f.read()


def test_without_the_sdk_it_says_what_to_install(env):
    code = "import sys; sys.modules['mcp'] = None; from ghost.cli.main import main; main(['mcp'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=30)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == ("Error: ghost mcp needs the MCP SDK: "
                                      "pip install 'ghost-tasks[mcp]'\n")


def test_other_commands_never_import_the_sdk(env):
    code = ("import sys; from ghost.cli import main, lifecycle, render; "
            "from ghost.actions import run, query, stop, cleanup; from ghost.state import tasks; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('mcp', 'pydantic', 'anyio')))")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=30)
    assert result.stdout.decode().strip() == "[]", result.stderr
