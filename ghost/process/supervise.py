"""The monitor as supervisor of its own task: exact starts, `--after` queues, restart policies.

- `record_start` records a start inside one write transaction that first checks everything
  that may forbid it: the run key already used (the existing task is reported instead), the
  name held by another live task, a queued task cancelled meanwhile, a restart overtaken by a
  stop, a cleanup or another restart. So 20 concurrent `run --name web` record one start.
- `wait_queue` records `queued`, reports it to `ghost run`, then sleeps on the event log (woken
  by commits, like `log -f`) until the dependencies have ended.
- ghost.process.restarts runs in the waiter of a task with a restart policy: it records the
  attempt's end together with the policy's decision (`restart_scheduled` or `gave_up`), sleeps
  through the backoff on the event log (a stop lands in the log and wakes it), and starts the
  next attempt.

There is no daemon: each task's own monitor does this, and the log records every decision.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from events import types as ev
from events.store import Rows, Store, StoreError
from ghost.errors import GhostError
from projections.checkpoint import VIEWS, task_from_rows
from projections.tasks import ENDED, QUEUED_STATUS, RESTARTING, Task

MAX_DELAY_MS = 30_000
Decide = Callable[[Mapping[str, Rows]], Sequence[ev.Event]]


def _transact(spec: Mapping[str, Any], decide: Decide, attempts: int = 5,
              ids: list[str] | None = None) -> list[ev.Event]:
    """`decide` in one write transaction of the spec's store (retried like record.append);
    the store's id is appended to `ids` when given."""
    for attempt in range(attempts):
        try:
            store = Store.open(spec["store"], create=True, views=VIEWS,
                               map_floor=spec["map_floor"])
            assert store is not None
            try:
                done = store.transact(decide)
                if ids is not None:
                    ids.append(store.store_id)
                return done
            finally:
                store.close()
        except StoreError:
            if attempt + 1 == attempts:
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt))
    return []


def me() -> dict[str, int]:
    from ghost.process.identity import start_ticks

    return {"pid": os.getpid(), "start_ticks": start_ticks(os.getpid()) or 0}


# -- recording a start ---------------------------------------------------------------------

def supervised(spec: Mapping[str, Any]) -> bool:
    """Whether this start needs the checks of `record_start` (a plain `run` does not)."""
    return bool(spec.get("fields") or spec.get("after") or int(spec.get("attempt", 1)) > 1)


def supervision_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The optional `spawned` fields of this start: name, group, key, policy, and for a later
    attempt its number and where its output starts in the log it appends to."""
    fields = dict(spec.get("fields") or {})
    if int(spec.get("attempt", 1)) > 1:
        fields["attempt"] = int(spec["attempt"])
        fields["log_offset"] = log_end(spec)
    return fields


def log_end(spec: Mapping[str, Any]) -> int:
    """Where the next attempt's output starts in the task's log: its size, or for a pumped
    task (whose log may rotate at --log-max) the logical end over all its pieces
    (ghost.state.logindex), so `log --attempt N` still finds it after a rotation."""
    if spec.get("io"):
        from ghost.state import logindex

        if logindex.has_index(spec["log_path"]):
            try:
                pieces = logindex.open_pieces(spec["log_path"], indexed=True)
            except (OSError, GhostError):
                pieces = []  # unreadable now: the plain size, as before
            if pieces:
                try:
                    return logindex.end(pieces)
                finally:
                    logindex.close(pieces)
    try:
        return os.lstat(spec["log_path"]).st_size
    except FileNotFoundError:
        return 0


def record_start(spec: Mapping[str, Any],
                 spawned: ev.Event) -> tuple[dict[str, Any] | None, str]:
    """Record `spawned` unless something forbids it: (None, store id) when recorded, else
    (the report for `ghost run`, ...): `{"ok": False, ...}`, with "exists" when the run key
    names another task."""
    from ghost.state.names import name_in_use, start_conflict

    task = spawned.task
    attempt = int(spec.get("attempt", 1))
    queued = bool(spec.get("after"))
    name, key = str(spec.get("name") or ""), str(spec.get("key") or "")
    outcome: dict[str, Any] = {}

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        now = task_from_rows(views["tasks"], task)
        if attempt > 1:
            if now is None or now.status != RESTARTING or now.attempt != attempt - 1:
                outcome["error"] = _overtaken(now)
                return ()
        elif queued:
            if now is None or now.status != QUEUED_STATUS:
                outcome["error"] = "the queued task was cancelled before it could start"
                return ()
            return (spawned,)
        elif now is not None:
            outcome["error"] = f"task {task} was already started"
            return ()
        kind, other = start_conflict(views, task, name, "" if attempt > 1 else key)
        if kind == "key" and other is not None:
            outcome["exists"] = other.id
            return ()
        if kind == "name" and other is not None:
            outcome["error"] = name_in_use(name, other)
            return (_failed(spec, outcome["error"], 1),)
        return (spawned,)

    ids: list[str] = []
    done = _transact(spec, decide, ids=ids)
    store_id = ids[0] if ids else ""
    if done and done[0].type == ev.SPAWNED:
        return None, store_id
    if "exists" in outcome:
        return {"ok": False, "exists": outcome["exists"]}, store_id
    return {"ok": False, "exit_code": 1, "error": outcome.get("error", "not started")}, store_id


def _overtaken(now: Task | None) -> str:
    if now is None:
        return "the task was cleaned up before it could restart"
    if now.status == "running":
        return f"the task was restarted meanwhile (attempt {now.attempt} is running)"
    return "the restart was cancelled (the task was stopped)"


def _failed(spec: Mapping[str, Any], error: str, code: int) -> ev.Event:
    extra = {"attempt": spec["attempt"]} if int(spec.get("attempt", 1)) > 1 else {}
    return ev.make(ev.SPAWN_FAILED, spec["task"], command=list(spec["command"]),
                   cwd=spec["cwd"], error=error, exit_code=code, actor=spec["actor"], **extra)


# -- --after: waiting in the queue ---------------------------------------------------------

def queued_event(spec: Mapping[str, Any]) -> ev.Event:
    from ghost.process.identity import boot_id

    return ev.make(ev.QUEUED, spec["task"], command=list(spec["command"]), cwd=spec["cwd"],
                   log_path=spec["log_path"], boot_id=boot_id(), after=list(spec["after"]),
                   any=bool(spec.get("after_any")), env_keys=list(spec["env_keys"]),
                   monitor=me(), actor=spec["actor"], **dict(spec.get("fields") or {}))


def record_queued(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """Record `queued` (same checks as a start); None when recorded, else the report."""
    from ghost.state.names import name_in_use, start_conflict

    event = queued_event(spec)
    outcome: dict[str, Any] = {}

    def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
        kind, other = start_conflict(views, event.task, str(spec.get("name") or ""),
                                     str(spec.get("key") or ""))
        if kind == "key" and other is not None:
            outcome["exists"] = other.id
            return ()
        if kind == "name" and other is not None:
            outcome["error"] = name_in_use(str(spec["name"]), other)
            return (_failed(spec, outcome["error"], 1),)
        return (event,)

    done = _transact(spec, decide)
    if done and done[0].type == ev.QUEUED:
        return None
    if "exists" in outcome:
        return {"ok": False, "exists": outcome["exists"]}
    return {"ok": False, "exit_code": 1, "error": outcome.get("error", "not queued")}


def dependency_verdict(deps: Sequence[Task | None], ids: Sequence[str],
                       any_end: bool) -> tuple[bool, str]:
    """(decided, why-not): decided with "" means start; decided with a reason means never."""
    for task_id, dep in zip(ids, deps, strict=True):
        if dep is None:
            return True, f"dependency {task_id} was cleaned up before it ended"
    ended = [d for d in deps if d is not None and d.status in ENDED]
    if any_end:
        return (True, "") if ended else (False, "")
    for dep in ended:
        if dep.status == "exited" and dep.exit_code == 0:
            continue
        how = (f"exited with code {dep.exit_code}" if dep.status == "exited"
               else f"was killed by {dep.signal}" if dep.status == "killed"
               else "ended in an unknown way")
        return True, f"dependency {dep.name or dep.id} {how}"
    if len(ended) == len(deps):
        return True, ""
    return False, ""


def wait_queue(spec: dict[str, Any], out: Any) -> Any:
    """Queue the task, tell `ghost run`, and return once it may start (a fresh `out` to report
    into, going nowhere). Exits the process when it must never start."""
    report = record_queued(spec)
    if report is not None:
        _report_and_exit(out, report)
    from ghost.process.monitor import _report

    _report(out, {"ok": True, "queued": True, "pid": 0})
    from events.follow import follow
    from projections.checkpoint import load_tasks

    store = Store.open(spec["store"], create=False, views=VIEWS, map_floor=spec["map_floor"])
    assert store is not None
    ids = list(spec["after"])
    try:
        for _ in follow(store, after=store.last_seq()):
            tasks = load_tasks(store)
            me_now = tasks.get(spec["task"])
            if me_now is None or me_now.status != QUEUED_STATUS:
                os._exit(0)  # cancelled (stop or cleanup): nothing to start
            decided, why = dependency_verdict([tasks.get(i) for i in ids], ids,
                                              bool(spec.get("after_any")))
            if decided:
                break
    finally:
        store.close()
    if why:
        def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
            now = task_from_rows(views["tasks"], spec["task"])
            ok = now is not None and now.status == QUEUED_STATUS
            return (_failed(spec, why, 1),) if ok else ()

        _transact(spec, decide, attempts=30)
        os._exit(0)
    return open(os.devnull, "w")  # noqa: SIM115 - closed by monitor._report


def _report_and_exit(out: Any, report: dict[str, Any]) -> None:
    from ghost.process.monitor import _report

    _report(out, report)
    os._exit(0)
