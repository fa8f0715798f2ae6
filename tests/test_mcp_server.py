"""`ghost mcp` as a process: a clean protocol stream, no zombies, a quiet exit, lazy imports.

Every test starts `python -m ghost mcp` as a subprocess with the test's GHOST_DATA_DIR; the
data_dir fixture kills every task recorded in the store afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import anyio
from mcp_support import Client, RawServer, ok, serve
from support import pid_alive, status_json, wait_for


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
