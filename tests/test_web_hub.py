"""The shared followers of `ghost serve` (ghost.web.hub) and the cutting of output into text
(ghost.web.streams.Decoder), on their own: no store, no server."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from ghost.web import hub as hubs
from ghost.web.streams import Decoder


def counting(total: int, gate: threading.Event | None = None):
    """A follower that hands out `total` numbered items (after `gate`), then waits to be
    stopped, like a real follow loop."""

    def items(position: int, stop: Callable[[], bool]) -> Iterator[tuple[str, Any, int]]:
        if gate is not None:
            gate.wait(10)
        for n in range(position + 1, total + 1):
            yield "item", n, n
        while not stop():
            time.sleep(0.01)

    return items


def test_one_follower_for_all_subscribers_and_it_stops_after_the_last():
    async def body() -> None:
        loop = asyncio.get_running_loop()
        gate = threading.Event()
        registry = hubs.Hubs()
        make = lambda idle: hubs.Hub(loop, "t", counting(50, gate), lambda: 0, idle)  # noqa: E731
        hub = registry.get("k", make)
        first, second = hub.subscribe(), hub.subscribe()
        assert registry.get("k", make) is hub
        gate.set()
        for sub in (first, second):
            got = [(await sub.queue.get())[1] for _ in range(50)]
            assert got == list(range(1, 51))
        thread = hub.thread
        assert thread is not None and thread.is_alive()
        first.close()
        assert not hub.closing
        second.close()
        assert hub.closing and "k" not in registry.hubs
        await asyncio.to_thread(thread.join, 5)
        assert not thread.is_alive()

    asyncio.run(body())


def test_a_late_subscriber_learns_where_the_follower_is():
    async def body() -> None:
        loop = asyncio.get_running_loop()
        hub = hubs.Hub(loop, "t", counting(10), lambda: 0, lambda h: None)
        early = hub.subscribe()
        assert [(await early.queue.get())[1] for _ in range(10)] == list(range(1, 11))
        late = hub.subscribe()
        assert late.position == 10 and late.queue.empty()  # the rest is its to read itself
        early.close()
        late.close()

    asyncio.run(body())


def test_a_subscriber_that_does_not_read_is_dropped_not_buffered_forever():
    async def body() -> None:
        loop = asyncio.get_running_loop()
        total = hubs.MAX_QUEUED * 3
        hub = hubs.Hub(loop, "t", counting(total), lambda: 0, lambda h: None)
        slow = hub.subscribe()
        deadline = time.monotonic() + 20
        while not slow.dropped and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert slow.dropped and slow.queue.qsize() <= hubs.MAX_QUEUED + 1
        items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
        assert items[-1] == (hubs.END, "too slow")
        slow.close()

    asyncio.run(body())


def test_a_failing_follower_ends_its_streams_with_the_reason():
    def broken(position: int, stop: Callable[[], bool]) -> Iterator[tuple[str, Any, int]]:
        yield "item", 1, 1
        raise OSError("the log went away")

    async def body() -> None:
        loop = asyncio.get_running_loop()
        hub = hubs.Hub(loop, "t", broken, lambda: 0, lambda h: None)
        sub = hub.subscribe()
        assert await sub.queue.get() == ("item", 1)
        assert await sub.queue.get() == (hubs.END, "the log went away")
        sub.close()

    asyncio.run(body())


@given(st.text(min_size=1, max_size=60), st.lists(st.integers(0, 240), max_size=8))
def test_output_cut_anywhere_comes_out_whole(text, cuts):
    data = text.encode("utf-8", "replace")
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    decoder = Decoder(0)
    shown = []
    for start, end in zip(points, points[1:], strict=False):
        message = decoder.message(data[start:end])
        if message:
            shown.append(message)
    shown.append(decoder.message(b"", final=True))

    texts = [json.loads(m.split("data: ", 1)[1]) for m in shown if m]
    assert "".join(t["data"] for t in texts) == data.decode("utf-8")
    assert decoder.emitted == len(data)
    offsets = [t["offset"] for t in texts]
    assert offsets == sorted(offsets) and (not offsets or offsets[0] == 0)
