"""Server-Sent Events: the event log (`id:` is the seq) and a task's output (`id:` is the byte
offset reached), both resumable with `Last-Event-ID` exactly where the client stopped."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import StreamingResponse

from ghost.web import feeds
from ghost.web.calls import call, in_thread
from ghost.web.errors import ApiError
from ghost.web.hub import END, Subscription

KEEPALIVE = 15.0  # seconds: a comment line keeps proxies from closing a quiet stream
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
SEQ_MAX = (1 << 63) - 1


def cursor(request: Request, param: str) -> int:
    """Where to resume: `Last-Event-ID` (sent by a reconnecting EventSource) wins over the
    query parameter; 422 when it is not a whole number."""
    raw = request.headers.get("last-event-id") or request.query_params.get(param) or "0"
    if not raw.isdigit() or int(raw) > SEQ_MAX:
        raise ApiError(422, "invalid", f"invalid {param} {raw[:40]!r}: must be a whole number "
                       "of 0 or more")
    return int(raw)


async def next_item(sub: Subscription) -> tuple[str, Any] | None:
    """The next item, or None after KEEPALIVE seconds without one."""
    try:
        return await asyncio.wait_for(sub.queue.get(), KEEPALIVE)
    except TimeoutError:
        return None


def drain(sub: Subscription, first: tuple[str, Any], limit: int = 512) -> list[tuple[str, Any]]:
    """`first` and whatever else is already queued: a client that fell behind catches up in
    one write instead of one per item."""
    items = [first]
    while len(items) < limit:
        try:
            items.append(sub.queue.get_nowait())
        except asyncio.QueueEmpty:
            break
    return items


def unseen(position: int, start: int, data: bytes) -> bytes:
    """The part of an output chunk at byte `start` that lies past `position` (a follower's
    chunks may overlap what the client already has, after a tail read or a resume)."""
    return data[max(0, position - start):] if start + len(data) > position else b""


def state(request: Request) -> Any:
    return request.app.state


async def events_stream(request: Request) -> StreamingResponse:
    after = cursor(request, "from")
    last = await in_thread(feeds.last_seq)
    if after > last:
        raise ApiError(422, "invalid", f"from {after} is past the end of this event log (its "
                       f"last seq is {last}): the cursor belongs to another store")
    sub = feeds.event_hub(state(request).hubs, asyncio.get_running_loop()).subscribe()

    async def body() -> AsyncIterator[str]:
        try:
            yield "retry: 1000\n\n"
            sent = after
            backlog = feeds.event_lines(after, until=sub.position)
            while sent < sub.position:
                batch = await in_thread(next, backlog, None)
                if batch is None:
                    break
                sent = batch[-1][0]
                yield "".join(f"id: {seq}\ndata: {line}\n\n" for seq, line in batch)
            while True:
                item = await next_item(sub)
                if item is None:
                    yield ": keepalive\n\n"
                    continue
                out: list[str] = []
                for kind, payload in drain(sub, item):
                    if kind == END:
                        yield "".join(out)
                        return  # the client reconnects with Last-Event-ID
                    fresh = [(seq, line) for seq, line in payload if seq > sent]
                    if fresh:
                        sent = fresh[-1][0]
                        out.extend(f"id: {seq}\ndata: {line}\n\n" for seq, line in fresh)
                if out:
                    yield "".join(out)
        finally:
            sub.close()

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


class Decoder:
    """Bytes to SSE messages of text, cut on character boundaries; `emitted` is the offset of
    the first byte not yet sent (the id a client resumes from)."""

    def __init__(self, offset: int) -> None:
        self.pending = b""
        self.emitted = offset

    def skip_to(self, offset: int) -> None:
        self.pending = b""
        self.emitted = offset

    def message(self, data: bytes, final: bool = False) -> str:
        buf = self.pending + data
        cut = len(buf) if final else feeds.utf8_cut(buf)
        self.pending = buf[cut:]
        if cut == 0:
            return ""
        start = self.emitted
        self.emitted += cut
        text = buf[:cut].decode("utf-8", "replace")
        payload = json.dumps({"offset": start, "data": text})
        return f"id: {self.emitted}\nevent: output\ndata: {payload}\n\n"


async def output_stream(request: Request) -> StreamingResponse:
    from ghost.actions import query
    from ghost.state import task_json

    observed = await call(request, query.status, request.path_params["id"])
    task_id = observed.task.id
    offset = cursor(request, "offset")
    sub = feeds.output_hub(state(request).hubs, asyncio.get_running_loop(), task_id).subscribe()

    async def body() -> AsyncIterator[str]:
        decoder = Decoder(offset)
        position = offset  # bytes read so far (some may wait in the decoder)
        try:
            yield "retry: 1000\n\n"
            while position < sub.position:
                data, start, _ = await in_thread(feeds.read_range, task_id, position,
                                                 min(feeds.MAX_READ, sub.position - position))
                if start > position:  # rotated away (--log-keep): go on from the oldest kept
                    decoder.skip_to(start)
                    position = start
                if not data:
                    break
                position += len(data)
                yield decoder.message(data)
            while True:
                item = await next_item(sub)
                if item is None:
                    yield ": keepalive\n\n"
                    continue
                fresh = bytearray()
                for kind, payload in drain(sub, item):
                    if kind == "output":
                        data = unseen(position, *payload)
                        position += len(data)
                        fresh += data
                        continue
                    last = decoder.message(bytes(fresh))
                    if kind == "ended":
                        last += decoder.message(b"", final=True)
                        task = json.dumps(task_json.task(payload))
                        last += f"id: {decoder.emitted}\nevent: end\ndata: {task}\n\n"
                    yield last
                    return  # END: the follower stopped; the client resumes from its last id
                if fresh:
                    yield decoder.message(bytes(fresh))
        finally:
            sub.close()

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)
