"""`GET /api/ws`: one WebSocket with seed 004's messages (the protocol is in docs/http.md).

Server -> client: `process.spawned`, `process.exited`, `process.killed` for every task (from
the event log, as it is committed), `process.output` for the tasks the client subscribed to,
plus `subscribed`/`unsubscribed`, `ok` and `error` replies (echoing the request's `ref`).
Client -> server: `subscribe`/`unsubscribe` (id, optional byte `offset`), `process.write`
(id, data), `process.resize` (id, cols, rows), `process.kill` (id, optional `signal`
SIGTERM|SIGKILL and `timeout`). Each request is handled by the same actions as the REST routes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from typing import Any

from starlette.websockets import WebSocket

from ghost.errors import GhostError
from ghost.web import feeds
from ghost.web.calls import VIA, call
from ghost.web.errors import MAX_BODY, ApiError, from_ghost
from ghost.web.hub import END
from ghost.web.streams import Decoder, drain, unseen


def translate(record: dict[str, Any]) -> dict[str, Any] | None:
    """A seed 004 message for an export record, or None for events it has no message for."""
    kind, task = record.get("type"), record.get("task")
    if kind == "spawned":
        return {"type": "process.spawned", "id": task, "pid": record.get("pid"),
                "command": record.get("command"), "name": record.get("name", ""),
                "seq": record["seq"]}
    if kind == "exited":
        return {"type": "process.exited", "id": task, "exit_code": record.get("code"),
                "status": "exited", "signal": None, "seq": record["seq"]}
    if kind == "killed":
        return {"type": "process.exited", "id": task, "exit_code": None, "status": "killed",
                "signal": record.get("signal"), "seq": record["seq"]}
    if kind == "lost":
        return {"type": "process.exited", "id": task, "exit_code": None, "status": "unknown",
                "signal": None, "seq": record["seq"]}
    if kind == "stop_requested":
        return {"type": "process.killed", "id": task, "signal": record.get("signal"),
                "seq": record["seq"]}
    return None


class Session:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.lock = asyncio.Lock()
        self.outputs: dict[str, asyncio.Task[None]] = {}
        self.jobs: set[asyncio.Task[None]] = set()

    async def send(self, message: dict[str, Any]) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(message))

    async def error(self, ref: Any, code: str, message: str) -> None:
        await self.send({"type": "error", "ref": ref, "code": code, "message": message})

    async def events(self) -> None:
        loop = asyncio.get_running_loop()
        sub = feeds.event_hub(self.ws.app.state.hubs, loop).subscribe()
        try:
            while True:
                kind, payload = await sub.queue.get()
                if kind == END:
                    await self.ws.close(1011, "the event feed stopped; reconnect")
                    return
                for _, line in payload:
                    message = translate(json.loads(line))
                    if message is not None:
                        await self.send(message)
        finally:
            sub.close()

    async def output(self, task_id: str, offset: int) -> None:
        loop = asyncio.get_running_loop()
        sub = feeds.output_hub(self.ws.app.state.hubs, loop, task_id).subscribe()
        decoder = Decoder(offset)
        position = offset

        async def emit(data: bytes, final: bool = False) -> None:
            start = decoder.emitted
            buf = decoder.pending + data
            cut = len(buf) if final else feeds.utf8_cut(buf)
            decoder.pending = buf[cut:]
            decoder.emitted += cut
            if cut:
                await self.send({"type": "process.output", "id": task_id, "stream": "log",
                                 "offset": start, "data": buf[:cut].decode("utf-8", "replace")})

        try:
            await self.send({"type": "subscribed", "id": task_id, "offset": offset})
            while position < sub.position:
                data, start, _ = await asyncio.to_thread(
                    feeds.read_range, task_id, position,
                    min(feeds.MAX_READ, sub.position - position))
                if start > position:  # rotated away (--log-keep): from the oldest kept byte
                    decoder.skip_to(start)
                    position = start
                if not data:
                    break
                position += len(data)
                await emit(data)
            while True:
                fresh = bytearray()
                for kind, payload in drain(sub, await sub.queue.get()):
                    if kind == "output":
                        data = unseen(position, *payload)
                        position += len(data)
                        fresh += data
                        continue
                    await emit(bytes(fresh))
                    if kind == "ended":
                        await emit(b"", final=True)
                    reason = "ended" if kind == "ended" else "stopped"
                    await self.send({"type": "unsubscribed", "id": task_id, "reason": reason,
                                     "offset": decoder.emitted})
                    return
                if fresh:
                    await emit(bytes(fresh))
        finally:
            sub.close()
            self.outputs.pop(task_id, None)

    async def handle(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            await self.error(None, "bad_json", "the message is not valid JSON")
            return
        if not isinstance(message, dict):
            await self.error(None, "invalid", "a message must be a JSON object")
            return
        ref = message.get("ref")
        await self.guarded(self.dispatch(message, ref), ref)

    async def guarded(self, work: Coroutine[Any, Any, None], ref: Any) -> None:
        try:
            await work
        except ApiError as exc:
            await self.error(ref, exc.code, exc.message)
        except GhostError as exc:
            err = from_ghost(exc)
            await self.error(ref, err.code, err.message)

    async def dispatch(self, message: dict[str, Any], ref: Any) -> None:
        from ghost.actions import query

        kind = message.get("type")
        ident = message.get("id")
        if kind not in ("subscribe", "unsubscribe", "process.write", "process.resize",
                        "process.kill"):
            raise ApiError(422, "invalid", f"unknown message type {str(kind)[:40]!r}")
        if not isinstance(ident, str) or not ident or len(ident) > 128:
            raise ApiError(422, "invalid", "'id' must be a task id")
        task = (await call(self.ws, query.status, ident)).task
        if kind == "subscribe":
            offset = message.get("offset", 0)
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ApiError(422, "invalid", "'offset' must be a whole number of 0 or more")
            if task.id not in self.outputs:
                self.outputs[task.id] = asyncio.create_task(self.output(task.id, offset))
        elif kind == "unsubscribe":
            running = self.outputs.pop(task.id, None)
            if running is not None:
                running.cancel()
            await self.send({"type": "unsubscribed", "id": task.id, "reason": "asked"})
        elif kind == "process.kill":  # a stop may take its timeout: keep reading meanwhile
            job = asyncio.create_task(self.guarded(self.kill(task.id, message, ref), ref))
            self.jobs.add(job)
            job.add_done_callback(self.jobs.discard)
        else:
            await self.input(kind, task.id, message, ref)

    async def kill(self, task_id: str, message: dict[str, Any], ref: Any) -> None:
        from ghost.actions.stop import stop

        sig = message.get("signal", "SIGKILL")
        timeout = message.get("timeout", 10.0)
        if sig not in ("SIGTERM", "SIGKILL"):
            raise ApiError(422, "invalid", "'signal' must be SIGTERM or SIGKILL")
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or \
                not 0 <= timeout <= 86400:
            raise ApiError(422, "invalid", "'timeout' must be 0 to 86400 seconds")
        task = await call(self.ws, stop, task_id, sig == "SIGKILL", float(timeout), via=VIA)
        await self.send({"type": "ok", "ref": ref, "id": task.id, "status": task.status})

    async def input(self, kind: str, task_id: str, message: dict[str, Any], ref: Any) -> None:
        from ghost.actions import send

        if kind == "process.write":
            data = message.get("data")
            if not isinstance(data, str):
                raise ApiError(422, "invalid", "'data' must be a string")
            sent = await call(self.ws, send.send, task_id, [data.encode("utf-8", "replace")],
                              via=VIA)
            await self.send({"type": "ok", "ref": ref, "id": task_id, "bytes": sent.bytes})
            return
        cols, rows = message.get("cols"), message.get("rows")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (cols, rows)):
            raise ApiError(422, "invalid", "'cols' and 'rows' must be whole numbers")
        await call(self.ws, send.resize, task_id, cols, rows, via=VIA)
        await self.send({"type": "ok", "ref": ref, "id": task_id, "cols": cols, "rows": rows})


async def websocket(ws: WebSocket) -> None:
    await ws.accept()
    session = Session(ws)
    events = asyncio.create_task(session.events())
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                text = (message.get("bytes") or b"").decode("utf-8", "replace")
            if len(text) > MAX_BODY:
                await session.error(None, "too_large", f"a message is limited to {MAX_BODY} "
                                    "bytes")
                continue
            await session.handle(text)
    finally:
        running = [events, *session.outputs.values(), *session.jobs]
        for job in running:
            job.cancel()
        for job in running:
            with contextlib.suppress(asyncio.CancelledError):
                await job
