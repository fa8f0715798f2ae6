"""Appending the monitor's own events, and the lean path that records how a task ended.

The waiter (ghost.process.waiter) imports this module only once its task has ended, and
`ghost stop` waits for exactly that record, so this path imports as little as it can (no click, no
dataclasses/inspect, no uuid): about 15 ms instead of 30.

An end is appended only while the task is still recorded as running (decided inside the write
transaction), so when `ghost stop` or a reader recorded it first nothing is recorded twice; and
only into the store the task was started in (its store id): a data dir removed and created
again while the task ran gets no orphan end.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events import types as ev
from events.store import Projection, Rows, Store, StoreError
from ghost.actor import actor
from ghost.process.identity import signal_name
from projections.checkpoint import VIEWS, task_from_rows


def append(spec: dict[str, Any], event: ev.Event, attempts: int = 1,
           views: Sequence[Projection] = VIEWS) -> str:
    """Append one event to the store named in `spec`, retrying a while (e.g. disk full).

    Returns the store's id, which the waiter keeps to recognise the store later."""
    for attempt in range(attempts):
        try:
            store = Store.open(spec["store"], create=True, views=views,
                               map_floor=spec["map_floor"])
            assert store is not None
            try:
                store.append([event])
                return store.store_id
            finally:
                store.close()
        except StoreError:
            if attempt + 1 == attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))  # keep trying for about a minute
    raise AssertionError("unreachable")


def end_event(task: str, status: int, rusage: Any = None, end_ns: int = 0,
              who: dict[str, Any] | None = None) -> ev.Event:
    """The `exited` or `killed` event for a wait status (`rusage` only when reaped by us)."""
    extra: dict[str, Any] = {}
    if rusage is not None:
        extra["rusage"] = {"utime": round(rusage.ru_utime, 6), "stime": round(rusage.ru_stime, 6),
                           "maxrss_kb": rusage.ru_maxrss}
    who = who or actor("monitor")
    end = end_ns or time.time_ns()
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return ev.make(ev.KILLED, task, signal=signal_name(sig), signum=sig, end_ns=end,
                       core_dumped=os.WCOREDUMP(status), actor=who, **extra)
    return ev.make(ev.EXITED, task, code=os.waitstatus_to_exitcode(status), end_ns=end,
                   actor=who, **extra)


def if_running(event: ev.Event,
               attempt: int = 0) -> Callable[[Mapping[str, Rows]], Sequence[ev.Event]]:
    """A transaction's decision: append `event` only while its task is recorded as running
    (and, given `attempt`, running that attempt: a late end of an attempt a stopper already
    recorded must not end the next one, started by hand meanwhile)."""
    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], event.task)
        ok = now is not None and now.running and (not attempt or now.attempt == attempt)
        return (event,) if ok else ()
    return decide


def append_end(spec: dict[str, Any], event: ev.Event, attempts: int) -> None:
    """Record a task's end in the store it started in; quietly nothing if that store is gone."""
    for attempt in range(attempts):
        try:
            store = Store.open(spec["store"], create=False, views=VIEWS,
                               map_floor=spec["map_floor"])
            if store is None:
                return  # the data dir was removed: never create a store for an orphan end
            try:
                if spec.get("store_id") and store.store_id != spec["store_id"]:
                    return  # removed and created again: not the store this task is in
                store.transact(if_running(event, int(spec.get("attempt", 1))))
                return
            finally:
                store.close()
        except StoreError:
            if attempt + 1 == attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))  # keep trying for about a minute


def record_end(spec: dict[str, Any], status: int, rusage: Any) -> None:
    event = end_event(spec["task"], status, rusage, end_ns=int(spec.get("end_ns") or 0))
    if int(spec.get("attempt", 1)) > 1:  # the end of this attempt only (issue 15)
        event = event._replace(data={**event.data, "attempt": int(spec["attempt"])})
    append_end(spec, event, attempts=30)
