"""Crash -> next attempt in one write transaction, for a policy that restarts at once.

With a base delay of 0 the backoff is always 0 (issue 15: `--restart-delay 0`), so the waiter
knows before it looks at the log that the policy, if it restarts at all, restarts now. It forks
the next attempt first, blocked on its GO pipe like every start (ghost.process.monitor), so the
pid is known; then ONE transaction records the attempt's end, the policy's decision and the
next attempt's `spawned` (one sync instead of two, and one store open instead of two). Every
check of the slow path is made inside that transaction: the end only while this attempt is
recorded as running (a stop that folded it first wins), the decision only without a stop, the
start only when no other live task took the name meanwhile. When any of them says no, the
held child is abandoned (it sees EOF and quits without running anything) and the waiter goes
on as before with whatever was recorded. A waiter killed between the commit and GO leaves a
recorded attempt that never ran, reconciled as `lost`, as for the monitor's own start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events import types as ev
from events.store import Rows, Store
from ghost.process import monitor
from ghost.process.restarts import _retried, attempt_spec, decision
from projections.checkpoint import task_from_rows
from projections.tasks import apply

Outcome = tuple[ev.Event | None, Callable[[], None] | None]


def _partial(spec: Mapping[str, Any], launch: Mapping[str, Any]) -> dict[str, Any]:
    """What the held child needs before the log is read: argv, cwd, environment, log."""
    overrides = {str(k): str(v) for k, v in dict(launch.get("env") or {}).items()}
    return {"task": spec["task"], "command": list(launch.get("command") or []),
            "cwd": str(launch.get("cwd") or ""), "env": {**os.environ, **overrides},
            "log_path": spec["log_path"], "attempt": int(spec.get("attempt", 1)) + 1}


def combined(spec: Mapping[str, Any], end: ev.Event, history: Sequence[ev.Event],
             launch: Mapping[str, Any], partial: Mapping[str, Any],
             spawned: Callable[[dict[str, Any]], ev.Event],
             box: dict[str, Any]) -> Callable[[Mapping[str, Rows]], Sequence[ev.Event]]:
    """The transaction's decision: (end), (end, decision) or (end, decision, next spawned),
    or nothing when this attempt's end is already recorded. `box["child"]` is the next
    attempt's monitor spec when its start was included."""
    from ghost.state.names import start_conflict

    attempt = int(spec.get("attempt", 1))

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        box.clear()
        now = task_from_rows(views["tasks"], spec["task"])
        if now is None or not now.running or now.attempt != attempt:
            return ()  # someone recorded the end first (a stop folds it, if this waiter is slow)
        after = apply(now, end)
        then = decision(after, history) if after is not None else None
        if then is None:
            return (end,)
        waiting = apply(after, then) if then.type == ev.RESTART_SCHEDULED \
            and int(then.data["delay_ms"]) == 0 else None
        if waiting is None:
            return (end, then)
        child = attempt_spec(spec, waiting, launch, attempt + 1)
        same = all(child[k] == partial[k] for k in ("command", "cwd", "log_path"))
        kind, _ = start_conflict(views, waiting.id, waiting.name, "")
        if not same or kind:
            return (end, then)  # the slow path records why it does not start
        box["child"] = child
        return (end, then, spawned(child))

    return decide


def end_and_respawn(spec: dict[str, Any], store: Store, end: ev.Event) -> Outcome | None:
    """Record the end (+ decision + next start when due now). None: nothing was recorded
    (no launch spec, a pumped task, fork failed): the caller takes the slow path. Else (the
    schedule recorded if any, a callable that lets the recorded next attempt run and becomes
    its waiter, if it was recorded)."""
    from ghost.state.specs import read

    launch = read(os.path.dirname(spec["store"]), spec["task"])
    if launch is None or launch.get("stdio") or not launch.get("command"):
        return None
    partial = _partial(spec, launch)
    try:
        held = monitor.hold(partial)
    except OSError:
        return None  # e.g. EAGAIN: the slow path records the failure properly
    history = [e for e in store.task_events(spec["task"]) if isinstance(e, ev.Event)]
    box: dict[str, Any] = {}
    decide = combined(spec, end, history, launch, partial,
                      lambda child: monitor.spawned_event(child, held), box)
    try:
        done = _retried(lambda: store.transact(decide))
    except BaseException:
        monitor.abandon(held)
        raise
    if len(done) == 3 and done[2].type == ev.SPAWNED:
        child, spawned = box["child"], done[2]

        def go() -> None:
            with open(os.devnull, "w") as out:
                pid = monitor.release(child, held, None, spawned, out)
            if pid is not None:
                monitor.exec_waiter(child, pid)
            os._exit(0)

        return done[1], go
    monitor.abandon(held)
    scheduled = done[1] if len(done) > 1 and done[1].type == ev.RESTART_SCHEDULED else None
    return scheduled, None
