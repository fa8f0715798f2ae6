"""One follower per feed, shared by every client: the event log, and each task's output.

A follower is a thread running an action's follow loop (ghost.actions.audit.feed for events,
ghost.actions.follow.follow_output for output), started by its first subscriber and stopped
after its last one leaves. It hands every batch to each subscriber's asyncio queue. A
subscriber learns, under the same lock, the position the follower has reached: everything
after it arrives through the queue, everything up to it the subscriber reads itself (the log's
backlog, or the bytes already in the file). So a client never misses or repeats an item, and a
hundred clients of one task cost one inotify watch, not a hundred.

A subscriber too slow to keep up (its queue over MAX_QUEUED items) is dropped: its stream ends
and the client resumes from its last id, losing nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ghost.actor import REMOTE

log = logging.getLogger("ghost.web")

MAX_QUEUED = 1000  # batches waiting for one subscriber before it is dropped
END = "end"  # the last item a follower hands out (with the reason or the ended task)


class Subscription:
    def __init__(self, hub: Hub, position: int) -> None:
        self.hub = hub
        self.position = position  # items after this come through `queue`
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.dropped = False
        self.in_flight = 0  # handed to the event loop, not yet in the queue (under hub.lock)

    def close(self) -> None:
        self.hub.unsubscribe(self)


class Hub:
    """A follower thread and its subscribers. `items(position, stop)` yields (kind, payload,
    new position); it runs in the thread and must return soon after `stop()` turns true."""

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str,
                 items: Callable[[int, Callable[[], bool]], Iterator[tuple[str, Any, int]]],
                 start: Callable[[], int], on_idle: Callable[[Hub], None]) -> None:
        self.loop = loop
        self.name = name
        self.items = items
        self.start = start
        self.on_idle = on_idle
        self.lock = threading.Lock()
        self.subscribers: set[Subscription] = set()
        self.position = 0
        self.thread: threading.Thread | None = None
        self.closing = False
        self.finished = False

    def subscribe(self) -> Subscription:
        """A new subscriber (starting the follower if needed). Call from the event loop."""
        with self.lock:
            if self.thread is None:
                self.position = self.start()
                self.thread = threading.Thread(target=self._run, name=f"ghost-web {self.name}",
                                               daemon=True)
                self.thread.start()
            sub = Subscription(self, self.position)
            if self.finished:
                sub.queue.put_nowait((END, None))
            self.subscribers.add(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self.lock:
            self.subscribers.discard(sub)
            if not self.subscribers:
                self.closing = True  # the follower notices within about a second
                self.on_idle(self)

    def _stop(self) -> bool:
        return self.closing

    def _run(self) -> None:
        REMOTE.set(None)
        end: Any = None
        try:
            for kind, payload, position in self.items(self.position, self._stop):
                with self.lock:
                    self.position = position
                    for sub in list(self.subscribers):
                        self._hand(sub, (kind, payload))
                if self.closing:
                    break
        except Exception as exc:  # the followers' clients see the stream end, then resume
            log.error("follower %s failed: %s: %s", self.name, type(exc).__name__, exc)
            end = str(getattr(exc, "message", exc))
        with self.lock:
            self.finished = True
            for sub in list(self.subscribers):
                self._hand(sub, (END, end))
            self.on_idle(self)

    def _hand(self, sub: Subscription, item: tuple[str, Any]) -> None:
        """Queue an item for `sub` (called in the follower thread, under the lock)."""
        if sub.dropped:
            return
        if sub.queue.qsize() + sub.in_flight >= MAX_QUEUED:
            sub.dropped = True
            item = (END, "too slow")
        sub.in_flight += 1
        self.loop.call_soon_threadsafe(self._deliver, sub, item)

    def _deliver(self, sub: Subscription, item: tuple[str, Any]) -> None:
        """In the event loop: the item reaches the subscriber's queue."""
        with self.lock:
            sub.in_flight -= 1
        sub.queue.put_nowait(item)


class Hubs:
    """The live hubs by key; a hub is forgotten once idle (a later subscriber starts anew)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.hubs: dict[str, Hub] = {}

    def get(self, key: str, make: Callable[[Callable[[Hub], None]], Hub]) -> Hub:
        with self.lock:
            hub = self.hubs.get(key)
            if hub is None or hub.closing or hub.finished:
                hub = self.hubs[key] = make(lambda h: self._forget(key, h))
            return hub

    def _forget(self, key: str, hub: Hub) -> None:
        with self.lock:
            if self.hubs.get(key) is hub:
                del self.hubs[key]

    def stop_all(self) -> None:
        with self.lock:
            hubs = list(self.hubs.values())
            self.hubs.clear()
        for hub in hubs:
            hub.closing = True
