"""The restart policy, applied by the task's own waiter once an attempt's end is recorded.

Docker's words: `no`, `on-failure` (a non-zero exit or a signal that no `stop` sent),
`always` and `unless-stopped` (the same here: ghost has no daemon to come back with, and a
stop always wins). The delay starts at the policy's `delay_ms` and doubles after every attempt
that ended within `min_uptime_ms` of its start, up to 30 s; an attempt that stayed up longer
resets it. `max_restarts` counts the restarts the policy made since the task was last started
by hand (`run` or `restart`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from events import types as ev
from events.store import Rows, Store, StoreError
from ghost.actor import actor
from ghost.process.supervise import MAX_DELAY_MS, _failed, _transact, me
from projections.checkpoint import VIEWS, load_tasks, task_from_rows
from projections.tasks import ENDED, RESTARTING, Task, apply

T = TypeVar("T")


def wants_restart(task: Task) -> str:
    """Why the policy restarts this ended attempt ("" when it does not)."""
    rule = str(task.policy.get("restart", "no"))
    if rule == "no" or task.status not in ENDED or task.stop:
        return ""
    failed = task.status != "exited" or task.exit_code != 0
    if rule == "on-failure" and not failed:
        return ""
    if task.status == "exited":
        return f"exited with code {task.exit_code}"
    if task.status == "killed":
        return f"killed by {task.signal}"
    return "its end was not observed"


def backoff(task: Task, history: Sequence[ev.Event]) -> tuple[int, int]:
    """(restarts the policy made since the last start by hand, delay in ms for the next)."""
    made, previous = 0, None
    for event in history:
        if event.type == ev.RESTART_SCHEDULED:
            made += 1
            previous = int(event.data["delay_ms"])
        elif event.type == ev.RESTART_REQUESTED:
            made, previous = 0, None
    base = int(task.policy.get("delay_ms", 100))
    uptime_ms = ((task.finished_ns or 0) - task.started_ns) // 1_000_000
    if previous is None or uptime_ms >= int(task.policy.get("min_uptime_ms", 10_000)):
        return made, base
    return made, min(MAX_DELAY_MS, max(base, previous * 2))


def decision(task: Task, history: Sequence[ev.Event]) -> ev.Event | None:
    """What the policy records after `task`'s attempt ended: `restart_scheduled`, `gave_up`
    or nothing."""
    reason = wants_restart(task)
    if not reason:
        return None
    made, delay = backoff(task, history)
    limit = task.policy.get("max_restarts")
    if limit is not None and made >= int(limit):
        return ev.make(ev.GAVE_UP, task.id, restarts=made, actor=actor("monitor"))
    return ev.make(ev.RESTART_SCHEDULED, task.id, attempt=task.attempt + 1, delay_ms=delay,
                   reason=reason, at_ns=time.time_ns() + delay * 1_000_000, monitor=me(),
                   actor=actor("monitor"))


def _schedule(task: Task, store: Store) -> ev.Event | None:
    """Record the policy's decision for the attempt just ended, decided inside the write
    transaction (a stop recorded meanwhile wins). Returns the schedule, if any."""
    history = [e for e in store.task_events(task.id) if isinstance(e, ev.Event)]

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], task.id)
        same = now is not None and now.attempt == task.attempt and now.spawned_seq == \
            task.spawned_seq and now.status in ENDED and not now.stop
        event = decision(now, history) if same and now is not None else None
        return (event,) if event is not None else ()

    done = store.transact(decide)  # the store this process has open (never open it twice)
    return done[0] if done and done[0].type == ev.RESTART_SCHEDULED else None


def _end_and_schedule(spec: Mapping[str, Any], store: Store,
                      end: ev.Event) -> ev.Event | None:
    """Record the attempt's end and the policy's decision in one write transaction (one sync
    less between a crash and the next attempt); the schedule, if any."""
    history = [e for e in store.task_events(spec["task"]) if isinstance(e, ev.Event)]
    attempt = int(spec.get("attempt", 1))

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], spec["task"])
        if now is None or not now.running or now.attempt != attempt:
            return ()  # someone recorded the end first (stop does, if this waiter is slow)
        after = apply(now, end)
        then = decision(after, history) if after is not None else None
        return (end,) if then is None else (end, then)

    done = store.transact(decide)
    return done[1] if len(done) > 1 and done[1].type == ev.RESTART_SCHEDULED else None


def _still_due(store: Store, task_id: str, attempt: int) -> bool:
    now = load_tasks(store).get(task_id)
    return now is not None and now.status == RESTARTING and now.attempt == attempt - 1


def _sleep_until(store: Store, task_id: str, attempt: int, at_ns: int) -> bool:
    """Wait for the restart time on the event log; False as soon as the restart is cancelled."""
    left_ms = (at_ns - time.time_ns()) // 1_000_000
    if left_ms <= 0:
        return True  # the start's own transaction still checks that nothing cancelled it
    if not _still_due(store, task_id, attempt):
        return False
    from events.follow import wake_path, wakeups

    deadline = time.monotonic() + left_ms / 1000
    for _ in wakeups([wake_path(store.path)], timeout_ms=max(1, min(1000, left_ms)),
                     stop=lambda: time.monotonic() >= deadline):
        if not _still_due(store, task_id, attempt):
            return False
    return _still_due(store, task_id, attempt)


def _open(spec: Mapping[str, Any]) -> Store | None:
    return _retried(lambda: Store.open(spec["store"], create=False, views=VIEWS,
                                       map_floor=spec["map_floor"]))


def _retried(step: Callable[[], T]) -> T:
    """`step()`, retried for about a minute while the store cannot be written (disk full), as
    ghost.process.record does for a plain end."""
    for retry in range(30):
        try:
            return step()
        except StoreError:
            if retry == 29:
                raise
            time.sleep(min(2.0, 0.1 * 2**retry))
    raise AssertionError("unreachable")


def end_and_restart(spec: dict[str, Any], status: int, rusage: Any) -> None:
    """The waiter of a task with a restart policy: record the end (as record.record_end
    would) with the policy's decision, wait out the backoff, start the next attempt."""
    from ghost.process.endfile import discard
    from ghost.process.record import end_event

    end = end_event(spec["task"], status, rusage, end_ns=int(spec.get("end_ns") or 0))
    if int(spec.get("attempt", 1)) > 1:
        end = end._replace(data={**end.data, "attempt": int(spec["attempt"])})
    store = _open(spec)
    if store is None:
        return  # the data dir was removed: nothing to record, nothing to restart
    try:
        if spec.get("store_id") and store.store_id != spec["store_id"]:
            return  # removed and created again: not the store this task is in
        outcome = None
        if spec.get("log_path"):  # restarts at once: end, decision, next start in one go
            from ghost.process.respawn import end_and_respawn

            outcome = end_and_respawn(spec, store, end)
        if outcome is not None and outcome[1] is not None:
            store.close()
            discard(spec["store"], spec["task"], int(spec.get("attempt", 1)))  # recorded
            outcome[1]()  # the next attempt runs; this process becomes its waiter
        scheduled = outcome[0] if outcome is not None else \
            _retried(lambda: _end_and_schedule(spec, store, end))
        discard(spec["store"], spec["task"], int(spec.get("attempt", 1)))  # recorded now
        if scheduled is None:
            return
        task = load_tasks(store).get(spec["task"])
        attempt = int(scheduled.data["attempt"])
        if task is None or not _sleep_until(store, task.id, attempt,
                                            int(scheduled.data["at_ns"])):
            return
    finally:
        store.close()
    start_attempt(spec, task, attempt)


def start_attempt(spec: Mapping[str, Any], task: Task, attempt: int) -> None:
    """Start attempt `attempt` of `task` in this process (it becomes the task's monitor)."""
    from ghost.process.monitor import exec_waiter, start
    from ghost.state.specs import read

    base = os.path.dirname(spec["store"])
    launch = read(base, task.id)
    if launch is None:
        if task.env_keys:
            gone = {**spec, "command": list(task.command), "cwd": task.cwd,
                    "attempt": attempt, "actor": actor("monitor")}
            _transact(spec, lambda _v: (_failed(gone, "its launch spec is gone", 1),))
            return
        launch = {"command": list(task.command), "cwd": task.cwd, "env": {}}
    child = attempt_spec(spec, task, launch, attempt)
    with open(os.devnull, "w") as out:
        pid = start(child, out)
    if pid is not None:
        exec_waiter(child, pid)


def attempt_spec(spec: Mapping[str, Any], task: Task, launch: Mapping[str, Any],
                 attempt: int) -> dict[str, Any]:
    """The monitor spec for another attempt: the same command, cwd, overrides and identity."""
    overrides = {str(k): str(v) for k, v in dict(launch.get("env") or {}).items()}
    fields: dict[str, Any] = {"attempt": attempt}
    for name, default in (("name", ""), ("group", "default"), ("key", "")):
        value = getattr(task, name)
        if value != default:
            fields[name] = value
    if task.policy:
        fields["policy"] = dict(task.policy)
    return {"task": task.id, "command": list(launch.get("command") or task.command),
            "cwd": str(launch.get("cwd") or task.cwd), "env": {**os.environ, **overrides},
            "env_keys": sorted(overrides), "log_path": task.log_path, "store": spec["store"],
            "actor": actor("monitor"), "map_floor": spec["map_floor"],
            "store_id": spec.get("store_id", ""), "attempt": attempt, "name": task.name,
            "key": task.key, "fields": fields, **_stdio_again(launch, overrides)}


def _stdio_again(launch: Mapping[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """--pty/--stdin/... again for a pumped task (plumbing is imported only for one)."""
    if not launch.get("stdio"):
        return {}
    from ghost.process.plumbing import for_attempt

    return for_attempt(launch, {**os.environ, **overrides})
