"""Driving a real `ghost mcp` server from tests: the SDK's client, and raw JSON-RPC lines."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from support import GHOST

pytest.importorskip("mcp.server.mcpserver")

from mcp import Client, StdioServerParameters  # noqa: E402

TOOLS = {"ghost_run", "ghost_list", "ghost_status", "ghost_stop", "ghost_log", "ghost_wait",
         "ghost_history", "ghost_restart", "ghost_send", "ghost_resize"}


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
