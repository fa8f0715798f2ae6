"""Appending the monitor's own events, and the lean path that records how a task ended.

The waiter (ghost.process.waiter) imports this module only once its task has ended, and
`ghost stop` waits for exactly that record, so this path imports as little as it can (no click, no
dataclasses/inspect, no uuid): about 15 ms instead of 30.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

from events import types as ev
from events.store import Projection, Store, StoreError
from ghost.actor import actor
from ghost.faults import crash_point
from ghost.process.identity import signal_name
from projections.checkpoint import VIEWS


def append(spec: dict[str, Any], event: ev.Event, attempts: int = 1,
           views: Sequence[Projection] = VIEWS) -> None:
    """Append one event to the store named in `spec`, retrying a while (e.g. disk full)."""
    for attempt in range(attempts):
        try:
            store = Store.open(spec["store"], create=True, views=views,
                               map_floor=spec["map_floor"])
            assert store is not None
            try:
                store.append([event])
            finally:
                store.close()
            return
        except StoreError:
            if attempt + 1 == attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))  # keep trying for about a minute


def end_event(task: str, status: int, rusage: Any) -> ev.Event:
    usage = {"utime": round(rusage.ru_utime, 6), "stime": round(rusage.ru_stime, 6),
             "maxrss_kb": rusage.ru_maxrss}
    who = actor("monitor")
    end = time.time_ns()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return ev.make(ev.KILLED, task, signal=signal_name(sig), signum=sig, end_ns=end,
                       core_dumped=os.WCOREDUMP(status), rusage=usage, actor=who)
    return ev.make(ev.EXITED, task, code=os.waitstatus_to_exitcode(status), end_ns=end,
                   rusage=usage, actor=who)


def record_end(spec: dict[str, Any], status: int, rusage: Any) -> None:
    crash_point("monitor:before-end-record")
    append(spec, end_event(spec["task"], status, rusage), attempts=30)
