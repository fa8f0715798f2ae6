"""Supervision decisions as a state machine over a real store: run, crash, stop, restart by
hand, the policy's schedule and respawn, monitor death and cleanup, in any order.

Every decision is taken by the code the monitor and the commands run (record_start, the
policy's _schedule, request_stops, the restart request, record_lost), each inside its own
write transaction, so stale decisions (a respawn after a stop, a second respawn, a late end)
are exercised as they happen in real life. Whatever the order, the log must show:
  - never two live attempts of one task;
  - attempt numbers 1, 2, 3, ... without gaps;
  - every attempt's end recorded at most once, and exactly once for an attempt that ended;
  - a stop wins: after a stop no attempt starts until someone restarts the task by hand.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from events import types as ev
from events.store import Rows, Store
from ghost.actions.group import request_stops
from ghost.process import endfile, endfold
from ghost.process.record import if_running
from ghost.process.respawn import combined
from ghost.process.restarts import _schedule
from ghost.process.supervise import record_start
from ghost.state.tasks import record_lost
from projections.checkpoint import VIEWS, load_tasks, task_from_rows
from projections.tasks import ENDED, RESTARTING, Task

TASK = "t-1"
MAP = 1 << 24
ACTOR = {"via": "cli", "user": "test", "pid": 1}
POLICIES = st.sampled_from([
    {}, {"restart": "always", "delay_ms": 0, "min_uptime_ms": 0},
    {"restart": "on-failure", "delay_ms": 0, "min_uptime_ms": 0, "max_restarts": 2},
    {"restart": "unless-stopped", "delay_ms": 0, "min_uptime_ms": 0, "max_restarts": 3}])


class Supervision(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="ghost-sup-")
        self.path = os.path.join(self.dir, "store")
        self.policy: dict[str, Any] | None = None
        self.pid = 1000

    def teardown(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers -----------------------------------------------------------------------

    def open(self) -> Store:
        store = Store.open(self.path, create=True, views=VIEWS, map_floor=MAP)
        assert store is not None
        return store

    def task(self) -> Task | None:
        store = self.open()
        try:
            return load_tasks(store).get(TASK)
        finally:
            store.close()

    def events(self) -> list[ev.Event]:
        store = self.open()
        try:
            return [e for e in store.task_events(TASK) if isinstance(e, ev.Event)]
        finally:
            store.close()

    def spec(self, attempt: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"policy": self.policy} if self.policy else {}
        return {"task": TASK, "store": self.path, "map_floor": MAP, "attempt": attempt,
                "command": ["sleep", "1"], "cwd": "/", "actor": ACTOR, "fields": fields,
                "name": "", "key": ""}

    def start(self, attempt: int) -> None:
        """What a monitor does to start `attempt`: record it, if nothing forbids it."""
        self.pid += 1
        extra = {"attempt": attempt, "log_offset": 0} if attempt > 1 else {}
        spawned = ev.make(ev.SPAWNED, TASK, command=["sleep", "1"], cwd="/", pid=self.pid,
                          pgid=self.pid, start_ticks=1, boot_id="b", log_path="/l",
                          actor=ACTOR, **extra, **self.spec(attempt)["fields"])
        record_start(self.spec(attempt), spawned)

    # -- rules -------------------------------------------------------------------------

    @precondition(lambda self: self.policy is None)
    @rule(policy=POLICIES)
    def run(self, policy: dict[str, Any]) -> None:
        self.policy = policy
        self.start(1)

    @precondition(lambda self: self.policy is not None)
    @rule(code=st.sampled_from([0, 1, 3]), attempt_of=st.sampled_from(["current", "stale"]))
    def end(self, code: int, attempt_of: str) -> None:
        """The waiter records an end (or a late one for an older attempt), only while running."""
        task = self.task()
        if task is None:
            return
        attempt = task.attempt if attempt_of == "current" else max(1, task.attempt - 1)
        event = ev.make(ev.EXITED, TASK, code=code, end_ns=1, attempt=attempt)

        def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
            now = task_from_rows(views["tasks"], TASK)
            ok = now is not None and now.running and now.attempt == attempt
            return (event,) if ok else ()

        store = self.open()
        try:
            done = store.transact(decide)
            now = load_tasks(store).get(TASK)
            if done and now is not None:
                _schedule(now, store)  # the policy's decision, right after the end
        finally:
            store.close()

    @precondition(lambda self: self.policy is not None)
    @rule(code=st.sampled_from([0, 1, 3]))
    def end_and_respawn_at_once(self, code: int) -> None:
        """Base delay 0: the waiter records the end, the policy's decision and the next
        attempt's start in one transaction (ghost.process.respawn.combined)."""
        task = self.task()
        if task is None:
            return
        spec = {**self.spec(task.attempt), "log_path": "/l"}
        launch = {"command": ["sleep", "1"], "cwd": "/", "env": {}}
        partial = {"command": ["sleep", "1"], "cwd": "/", "log_path": "/l"}
        end = ev.make(ev.EXITED, TASK, code=code, end_ns=1, attempt=task.attempt)

        def spawned(child: dict[str, Any]) -> ev.Event:
            self.pid += 1
            return ev.make(ev.SPAWNED, TASK, command=["sleep", "1"], cwd="/", pid=self.pid,
                           pgid=self.pid, start_ticks=1, boot_id="b", log_path="/l",
                           actor=ACTOR, log_offset=0, **child["fields"])

        store = self.open()
        try:
            history = [e for e in store.task_events(TASK) if isinstance(e, ev.Event)]
            store.transact(combined(spec, end, history, launch, partial, spawned, {}))
        finally:
            store.close()

    @precondition(lambda self: self.policy is not None)
    @rule(late=st.booleans())
    def stop_folds_the_end_file(self, late: bool) -> None:
        """`stop -g`: the stop is requested, the waiter keeps the end in its file, the stopper
        folds it; with `late` the waiter then tries to record the same end itself."""
        task = self.task()
        if task is None:
            return
        store = self.open()
        try:
            request_stops(store, [task], 15, 1.0, False, "cli")
            now = load_tasks(store).get(TASK)
            if now is not None and now.running:
                waiter = {"task": TASK, "store": self.path, "store_id": store.store_id,
                          "attempt": now.attempt}
                assert endfile.write(waiter, 15, None, 1)
                endfold.fold(store, [now], "cli")
                if late:
                    end = ev.make(ev.KILLED, TASK, signal="SIGTERM", signum=15, end_ns=1,
                                  attempt=now.attempt)
                    store.transact(if_running(end, now.attempt))
        finally:
            store.close()

    @precondition(lambda self: self.policy is not None)
    @rule()
    def respawn(self) -> None:
        """The monitor wakes from its backoff and tries to start the next attempt."""
        task = self.task()
        if task is not None:
            self.start(task.attempt + 1)

    @precondition(lambda self: self.policy is not None)
    @rule()
    def stop(self) -> None:
        task = self.task()
        if task is None:
            return
        store = self.open()
        try:
            request_stops(store, [task], 15, 1.0, False, "cli")
            now = load_tasks(store).get(TASK)
            if now is not None and now.running:  # the signal ends it; the waiter records it
                store.append([ev.make(ev.KILLED, TASK, signal="SIGTERM", signum=15, end_ns=1,
                                      attempt=now.attempt)])
                after = load_tasks(store).get(TASK)
                if after is not None:
                    _schedule(after, store)
        finally:
            store.close()

    @precondition(lambda self: self.policy is not None)
    @rule()
    def restart_by_hand(self) -> None:
        task = self.task()
        if task is None or task.status not in ENDED and task.status != RESTARTING:
            return
        event = ev.make(ev.RESTART_REQUESTED, TASK, actor=ACTOR)

        def decide(views: Mapping[str, Rows]) -> Sequence[ev.Event]:
            now = task_from_rows(views["tasks"], TASK)
            ok = now is not None and (now.status in ENDED or now.status == RESTARTING)
            return (event,) if ok else ()

        store = self.open()
        try:
            store.transact(decide)
        finally:
            store.close()
        self.start(task.attempt + 1)

    @precondition(lambda self: self.policy is not None)
    @rule()
    def monitor_dies(self) -> None:
        task = self.task()
        if task is None or not task.live:
            return
        store = self.open()
        try:
            record_lost(store, task, "its monitor died")
        finally:
            store.close()

    @precondition(lambda self: self.policy is not None)
    @rule()
    def cleanup(self) -> None:
        task = self.task()
        if task is None or task.running:
            return
        store = self.open()
        try:
            store.append([ev.make(ev.CLEANED, TASK, log_removed=False)])
        finally:
            store.close()

    # -- what must always hold ---------------------------------------------------------

    @invariant()
    def the_log_tells_a_consistent_story(self) -> None:
        if self.policy is None:
            return
        live: set[int] = set()
        ended: dict[int, int] = {}
        spawned: list[int] = []
        stopped = False
        for event in self.events():
            if event.type == ev.SPAWNED:
                attempt = event.get("attempt", 1)
                assert not stopped, "an attempt started after a stop without a restart by hand"
                live.add(attempt)
                spawned.append(attempt)
                assert len(live) <= 1, f"two live attempts: {sorted(live)}"
            elif event.type in (ev.EXITED, ev.KILLED):
                attempt = event.get("attempt", 1)
                ended[attempt] = ended.get(attempt, 0) + 1
                assert ended[attempt] == 1, f"attempt {attempt} ended twice"
                live.discard(attempt)
            elif event.type == ev.LOST:
                live.clear()
            elif event.type == ev.STOP_REQUESTED:
                stopped = True
            elif event.type == ev.RESTART_REQUESTED:
                stopped = False
            elif event.type == ev.CLEANED:
                stopped = True  # nothing may start a cleaned task
        assert spawned == list(range(1, len(spawned) + 1)), f"attempts {spawned}"
        task = self.task()
        if task is not None and task.status in ("exited", "killed"):
            assert ended.get(task.attempt) == 1


TestSupervision = Supervision.TestCase
