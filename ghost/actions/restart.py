"""`restart`: stop a task if it runs (exactly as `stop` does), then start its next attempt.

The task keeps its id, name, group and policy. The next attempt is started by a new monitor
with the same command, working directory and environment overrides (from the task's launch
spec, ghost.state.specs); the log file continues, and the `spawned` event records where this
attempt's output starts (`log_offset`). `restart_requested` is recorded first, inside a write
transaction that checks the task may restart (it ended, its name is not taken meanwhile), and
the monitor records the start only if nothing overtook it (a stop, a cleanup, another restart).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from events import types as ev
from events.store import Rows
from ghost import datadir
from ghost.actions.group import GroupResult, in_group
from ghost.actions.run import Started
from ghost.actions.stop import stop
from ghost.actor import actor
from ghost.errors import GhostError
from ghost.process.launch import launch
from ghost.process.restarts import attempt_spec
from ghost.process.supervise import me
from ghost.state import specs
from ghost.state.names import name_in_use, named_in
from ghost.state.store import close_stores, open_store, store_errors
from ghost.state.tasks import get, load
from projections.checkpoint import task_from_rows
from projections.tasks import ENDED, QUEUED_STATUS, RESTARTING, Task

if TYPE_CHECKING:
    from ghost.state.logindex import Piece


def _request(task: Task, via: str) -> Task:
    """Record `restart_requested` if the task may restart now; the task as it then is."""
    store = open_store(write=True)
    assert store is not None
    event = ev.make(ev.RESTART_REQUESTED, task.id, monitor=me(), actor=actor(via))
    seen: dict[str, object] = {}

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], task.id)
        if now is None:
            seen["error"] = f"task {task.id} was cleaned up meanwhile"
            return ()
        if now.status not in ENDED and now.status != RESTARTING:
            seen["error"] = f"task {task.id} is {now.status} again (restarted meanwhile?)"
            return ()
        other = named_in(views, now.name) if now.name else None
        if other is not None and other.id != now.id and other.live:
            seen["error"] = name_in_use(now.name, other)
            return ()
        return (event,)

    with store_errors():
        done = store.transact(decide)
    if not done:
        raise GhostError(str(seen.get("error", f"task {task.id} cannot be restarted")))
    return get(store, task.id)


def restart(ident: str, timeout: float = 10.0, *, via: str) -> Started:
    """Stop `ident` if it runs, then start its next attempt; returns the running attempt."""
    store = open_store(write=True)
    task = get(store, ident)
    if task.status == QUEUED_STATUS:
        raise GhostError(f"task {task.id} is queued (waiting for {', '.join(task.after)}); "
                         "it has not started yet")
    base = datadir.prepare(create=True)
    assert base is not None
    launch_spec = specs.read(base, task.id)
    if launch_spec is None:
        if task.env_keys:
            raise GhostError(f"cannot restart task {task.id}: its launch spec (with the values "
                             f"of {', '.join(task.env_keys)}) is gone")
        launch_spec = {"command": list(task.command), "cwd": task.cwd, "env": {}}
    if task.running:
        task = stop(task.id, timeout=timeout, via=via)
    task = _request(task, via)
    spec = attempt_spec({"store": datadir.store_dir(base), "map_floor": datadir.map_floor()},
                        task, launch_spec, task.attempt + 1)
    spec["actor"] = actor(via)
    spec["env"] = {**os.environ, **{str(k): str(v) for k, v in
                                    dict(launch_spec.get("env") or {}).items()}}
    if threading.active_count() == 1:
        close_stores()  # fork the monitor from a process without an open store (fast path)
    # A threaded caller (ghost ui: its reader threads use the store) keeps it open, and
    # launch() starts the monitor with posix_spawn instead of a fork.
    result = launch(spec)
    if not result.get("ok"):
        now = get(open_store(write=False), task.id)
        if now.running and now.attempt > task.attempt:  # another restart won: report it
            return _started(now)
        raise GhostError(str(result.get("error", "the task could not be restarted")),
                         int(result.get("exit_code", 1)))
    return _started(get(open_store(write=False), task.id))


def _started(task: Task) -> Started:
    return Started(task.id, task.pid, task.command, task.cwd, task.log_path, task.started_ns,
                   task.status, name=task.name, group=task.group)


def restart_group(group: str, timeout: float = 10.0, *, via: str) -> list[GroupResult]:
    """Restart every task of `group` that is not queued, one after another."""
    chosen = [t for t in in_group(group, load(open_store(write=False)))
              if t.status != QUEUED_STATUS]
    results = []
    for task in chosen:
        try:
            started = restart(task.id, timeout, via=via)
        except GhostError as exc:
            results.append(GroupResult(task, False, exc.message))
            continue
        now = task._replace(pid=started.pid, status=started.status)
        results.append(GroupResult(now, True, verb=f"restarted (pid {started.pid})"))
    return results


def attempt_range(task: Task, attempt: int) -> tuple[int, int | None]:
    """(start, end) byte offsets of attempt `attempt`'s output in the task's log (end None:
    to the end of the file), from the `log_offset` of each attempt's `spawned` event."""
    store = open_store(write=False)
    assert store is not None
    offsets: dict[int, int] = {}
    with store_errors():
        for event in store.task_events(task.id):
            if isinstance(event, ev.Event) and event.type == ev.SPAWNED:
                number = event.get("attempt", 1)
                offsets.setdefault(number if type(number) is int else 1,
                                   int(event.get("log_offset", 0) or 0))
    if attempt not in offsets:
        raise GhostError(f"task {task.id} has no attempt {attempt} (it has made "
                         f"{task.attempt})")
    return offsets[attempt], offsets.get(attempt + 1)


def read_attempt(ident: str, attempt: int,
                 tail: int | None = None) -> tuple[Task, Iterator[bytes]]:
    """A task and the bytes its attempt `attempt` wrote (the last `tail` lines of them).

    Offsets are logical (ghost.state.logindex): a --log-max log that rotated is read across
    its pieces; a plain log is one piece starting at 0."""
    from ghost.state import logindex, logs

    task = get(open_store(write=False), ident)
    start, end = attempt_range(task, attempt)
    path, fd = logs.open_task_log(task.id)
    os.close(fd)  # opened here for its refusals (missing, symlink); read through the pieces
    pieces = logindex.open_pieces(path)
    return task, _slice(pieces, start, end, tail)


def _slice(pieces: list[Piece], start: int, end: int | None,
           tail: int | None) -> Iterator[bytes]:
    from ghost.state import logindex

    try:
        stop = logindex.end(pieces) if end is None else end
        start = max(start, pieces[0].start)  # older pieces beyond --log-keep are gone
        if tail is not None:
            start = max(start, _tail_start(b"".join(logindex.read_range(pieces, start, stop)),
                                           start, tail))
        if start < stop:
            yield from logindex.read_range(pieces, start, stop)
    finally:
        logindex.close(pieces)


def _tail_start(data: bytes, start: int, lines: int) -> int:
    """Where the last `lines` lines of `data` (the attempt's bytes from `start`) begin (read
    once: attempts are usually small; a huge one costs one read of it)."""
    if lines <= 0:
        return start + len(data)
    cut = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            return start
    return start + cut + 1
