"""Calling an action from a request: in a worker thread, as `via="web"` from the peer's address.

Actions block (a stop waits up to its timeout; a start waits for the monitor), so they run in
anyio's worker threads, never on the event loop. The peer's address is set in the actor's
context variable around the call, so every event the action records names it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import HTTPConnection

from ghost.actor import REMOTE

VIA = "web"
T = TypeVar("T")


def peer(conn: HTTPConnection) -> str:
    client = conn.client
    return f"{client.host}:{client.port}" if client else "unknown"


async def call(conn: HTTPConnection, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    remote = peer(conn)

    def work() -> T:
        token = REMOTE.set(remote)
        try:
            return fn(*args, **kwargs)
        finally:
            REMOTE.reset(token)

    return await anyio.to_thread.run_sync(work)


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """A blocking read that records nothing (no actor needed)."""
    return await anyio.to_thread.run_sync(lambda: fn(*args))
