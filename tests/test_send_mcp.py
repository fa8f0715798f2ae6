"""The MCP side of interactive tasks: ghost_run input, ghost_send, ghost_resize, and ghost_log's
since/stream/timestamps, through a real `ghost mcp` server and real tasks."""

from __future__ import annotations

import sys

import anyio
from mcp_support import Client, error, ok, serve

PY = sys.executable


async def _log_until(client: Client, task_id: str, needle: str, **extra: object) -> str:
    with anyio.fail_after(30):
        while True:
            text = (await ok(client, "ghost_log", id=task_id, **extra))["text"]
            if needle in text:
                return str(text)
            await anyio.sleep(0.05)


def test_send_and_resize_drive_a_pty_task(env):
    async def body(client: Client) -> None:
        started = await ok(client, "ghost_run", command=PY, args=["-i", "-q"], input="pty")
        task_id = started["id"]
        await _log_until(client, task_id, ">>> ")
        sent = await ok(client, "ghost_send", id=task_id, text="import os; print(6 * 7)")
        assert sent == {"id": task_id, "bytes": len("import os; print(6 * 7)") + 1, "eof": False}
        await _log_until(client, task_id, "42")
        resized = await ok(client, "ghost_resize", id=task_id, cols=120, rows=50)
        assert resized == {"id": task_id, "cols": 120, "rows": 50}
        await ok(client, "ghost_send", id=task_id, text="print(os.get_terminal_size())")
        await _log_until(client, task_id, "columns=120, lines=50")
        done = await ok(client, "ghost_send", id=task_id, text="", eof=True)
        assert done["eof"] is True and done["bytes"] == 0
        waited = await ok(client, "ghost_wait", id=task_id, timeout=30)
        assert waited["ended"] and waited["task"]["exit_code"] == 0

    serve(env, body)


def test_send_refuses_a_task_without_input(env):
    async def body(client: Client) -> None:
        task_id = (await ok(client, "ghost_run", command="sleep", args=["30"]))["id"]
        message = await error(client, "ghost_send", id=task_id, text="y")
        assert message.endswith(f": task {task_id} takes no input (start it with --pty or "
                                "--stdin)")
        await ok(client, "ghost_stop", id=task_id, force=True)

    serve(env, body)


def test_log_by_stream_with_timestamps(env):
    code = "import sys; print('to-out', flush=True); print('to-err', file=sys.stderr)"

    async def body(client: Client) -> None:
        task_id = (await ok(client, "ghost_run", command=PY, args=["-c", code],
                            timestamps=True))["id"]
        await ok(client, "ghost_wait", id=task_id, timeout=30)
        err = await ok(client, "ghost_log", id=task_id, stream="stderr")
        assert err["text"] == "to-err\n"
        stamped = await ok(client, "ghost_log", id=task_id, stream="stdout", timestamps=True)
        assert stamped["text"].endswith(" to-out\n") and stamped["text"][4] == "-"
        recent = await ok(client, "ghost_log", id=task_id, since="1h")
        assert sorted(recent["text"].splitlines()) == ["to-err", "to-out"]

    serve(env, body)
