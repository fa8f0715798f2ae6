"""Waking up when files change, and following the event log as other processes commit.

The only module that imports watchfiles (35 ms of imports, so never on the run/list path).

watchfiles' Rust loop sleeps `step` ms between looks at its inotify queue, so `step` sets both
the latency (1-2 x step) and the idle cost (1000/step wake-ups a second). A follower therefore
runs hot (step 1 ms) while changes keep coming and cools down (step 20 ms) after two quiet
seconds: a busy stream is delivered in about a millisecond, an idle follower costs ~0.2 % of a
core, and only the first change after a quiet spell waits up to ~40 ms.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterator, Sequence

from events.store import WAKE, Store
from events.types import Corrupt, Event

HOT_STEP_MS = 1
COLD_STEP_MS = 20
HOT_SECONDS = 2.0
TIMEOUT_MS = 1000  # a wake-up at least this often, as a safety net for missed notifications


class Interrupted(Exception):
    """The watcher saw SIGINT; callers turn it into exit 130."""


def wakeups(paths: Sequence[str], timeout_ms: int = TIMEOUT_MS,
            stop: Callable[[], bool] | None = None) -> Generator[bool, None, None]:
    """Yield True when one of `paths` changed, False after `timeout_ms` without a change.

    Ends when `stop()` turns true (checked on every step). Paths must exist.
    """
    from watchfiles._rust_notify import RustNotify

    class _Stop:
        def is_set(self) -> bool:
            return bool(stop and stop())

    stop_event = _Stop() if stop else None
    last_change = time.monotonic()
    with RustNotify(list(paths), False, False, 50, False, False) as notify:
        while True:
            hot = time.monotonic() - last_change < HOT_SECONDS
            step = HOT_STEP_MS if hot else COLD_STEP_MS
            result = notify.watch(step, step, timeout_ms, stop_event)
            if result == "stop":
                return
            if result == "signal":
                raise Interrupted
            changed = result != "timeout"
            if changed:
                last_change = time.monotonic()
            yield changed


def wake_path(store_path: str) -> str:
    """The file every writer touches after a commit; created if missing."""
    path = os.path.join(store_path, WAKE)
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
    return path


def follow(store: Store, after: int = 0, stop: Callable[[], bool] | None = None,
           timeout_ms: int = TIMEOUT_MS) -> Iterator[list[Event | Corrupt]]:
    """Yield batches of events with seq > `after` as they are committed, forever.

    The first batch is everything already there (possibly empty). Each later batch follows a
    wake-up; an empty batch means "nothing new yet" and lets callers check their own deadline.
    Never holds a read transaction between batches.
    """
    batch = store.read(after)
    if batch:
        after = batch[-1].seq
    yield batch
    for _ in wakeups([wake_path(store.path)], timeout_ms, stop):
        batch = store.read(after)
        if batch:
            after = batch[-1].seq
        yield batch
