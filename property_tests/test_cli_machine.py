"""A state machine over ghost's real operations: start, stop, kill a monitor, kill a task's
process, reboot, cleanup — and tasks that end by themselves.

Every operation is the real one (core functions with real processes and a real LMDB store in a
temporary data dir); the only simulation is the reboot, which kills every process the old
"boot" ran and then changes the boot id (GHOST_TEST_BOOT_ID). After every step:
  * the view kept incrementally in the store equals a full replay of the log;
  * the sequence is gap-free and no task has more than one end;
  * once reconciled (ghost.state.tasks.load), no task is `running` whose process is gone
    (allowing a monitor the moment it needs to record an end it has seen).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import uuid

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from support import kill_everything_started, wait_for

from events.types import ENDINGS, Event
from ghost.actions import cleanup as cleanup_action
from ghost.actions import stop as control
from ghost.actions.run import start_one
from ghost.process import identity as proc
from ghost.state import store as state
from ghost.state import tasks as core
from projections.checkpoint import load_tasks
from projections.tasks import Task, rebuild

MAX_RUNNING = 4


def _close_cached_stores() -> None:
    """ghost keeps one store per process; close it so forked monitors never inherit it."""
    for store in state._open.values():
        store.close()
    state._open.clear()


def _dead(pid: int, ticks: int) -> bool:
    return not proc.is_alive(pid, ticks)


class GhostMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = tempfile.mkdtemp(prefix="ghost-machine-")
        self.data_dir = os.path.join(self.root, "data")
        self.saved = {k: os.environ.get(k) for k in ("GHOST_DATA_DIR", "GHOST_TEST_BOOT_ID")}
        os.environ["GHOST_DATA_DIR"] = self.data_dir
        os.environ.pop("GHOST_TEST_BOOT_ID", None)
        self.started: list[str] = []
        # `sleep` tasks started and not yet ended by a rule, in start order, and those whose
        # monitor a rule killed. What a rule draws from comes from this model, never from the
        # live system: whether an `exit 3` task has ended yet is timing, and a draw that
        # depends on it makes hypothesis's replay fail (FlakyStrategyDefinition) under load.
        self.sleeping: list[str] = []
        self.monitor_killed: set[str] = set()

    # -- helpers -------------------------------------------------------------------------

    def view(self, reconcile: bool) -> dict[str, Task]:
        try:
            store = state.open_store(write=True)
            return core.load(store) if reconcile else load_tasks(store)
        finally:
            _close_cached_stores()

    def running(self) -> list[Task]:
        return sorted((t for t in self.view(True).values() if t.running), key=lambda t: t.id)

    @property
    def sleepers(self) -> int:
        return len(self.sleeping)

    def sleeper(self, task_id: str) -> Task:
        return self.view(True)[task_id]

    # -- operations ----------------------------------------------------------------------

    @precondition(lambda self: len(self.started) < 12)
    @rule(kind=st.sampled_from(["sleep", "exit", "fail"]))
    def start(self, kind: str) -> None:
        if kind == "sleep" and self.sleepers >= MAX_RUNNING:
            kind = "exit"
        command = {"sleep": ["sleep", "60"], "exit": ["sh", "-c", "exit 3"],
                   "fail": ["/nonexistent/program"]}[kind]
        try:
            started = start_one(command, self.root, {}, via="cli")
        except Exception as exc:  # noqa: BLE001 - only the refused start is expected to fail
            assert kind == "fail", exc
            return
        finally:
            _close_cached_stores()
        assert kind != "fail"
        self.started.append(started.id)
        if kind == "sleep":
            self.sleeping.append(started.id)

    @precondition(lambda self: self.sleepers)
    @rule(data=st.data(), force=st.booleans())
    def stop(self, data: st.DataObject, force: bool) -> None:
        task = self.sleeper(data.draw(st.sampled_from(self.sleeping)))
        try:
            ended = control.stop(task.id, force=force, timeout=5.0, via="cli")
        except Exception as exc:  # noqa: BLE001 - a task may end on its own meanwhile
            assert "not running" in str(exc), exc
            return
        finally:
            _close_cached_stores()
        assert not ended.running
        self.sleeping.remove(task.id)

    @precondition(lambda self: self.sleepers)
    @rule(data=st.data())
    def kill_monitor(self, data: st.DataObject) -> None:
        alive = [t for t in self.sleeping if t not in self.monitor_killed]
        if not alive:
            return
        task = self.sleeper(data.draw(st.sampled_from(alive)))
        assert proc.is_alive(task.monitor_pid, task.monitor_start_ticks)
        self.monitor_killed.add(task.id)
        os.kill(task.monitor_pid, signal.SIGKILL)
        wait_for(lambda: _dead(task.monitor_pid, task.monitor_start_ticks),
                 message="the monitor to die")

    @precondition(lambda self: self.sleepers)
    @rule(data=st.data())
    def kill_task_process(self, data: st.DataObject) -> None:
        task = self.sleeper(data.draw(st.sampled_from(self.sleeping)))
        proc.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)
        wait_for(lambda: _dead(task.pid, task.start_ticks), message="the task to die")
        self.sleeping.remove(task.id)

    @precondition(lambda self: self.sleepers >= 2)
    @rule()
    def reboot(self) -> None:
        """Everything the old boot ran dies; then the machine comes back with a new boot id."""
        for task in self.running():
            for pid, ticks in ((task.monitor_pid, task.monitor_start_ticks),
                               (task.pid, task.start_ticks)):
                if proc.is_alive(pid, ticks):
                    os.kill(pid, signal.SIGKILL)
                    wait_for(lambda p=pid, t=ticks: _dead(p, t), message="a process to die")
        os.environ["GHOST_TEST_BOOT_ID"] = str(uuid.uuid4())
        self.sleeping.clear()

    @precondition(lambda self: len(self.started) > self.sleepers)
    @rule()
    def cleanup(self) -> None:
        try:
            done = cleanup_action.cleanup(days=0, everything=True, via="cli")
        finally:
            _close_cached_stores()
        assert all(not t.running for t in done.tasks)

    # -- what must hold after every step --------------------------------------------------

    @invariant()
    def incremental_view_equals_full_replay(self) -> None:
        if not os.path.exists(os.path.join(self.data_dir, "store")):
            return
        try:
            store = state.open_store(write=False)
            if store is None:
                return
            events = list(store.scan())
            assert load_tasks(store) == rebuild(events)
        finally:
            _close_cached_stores()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        ends: dict[str, int] = {}
        for event in events:
            if isinstance(event, Event) and event.type in ENDINGS:
                ends[event.task] = ends.get(event.task, 0) + 1
        assert all(n == 1 for n in ends.values()), ends

    @invariant()
    def nothing_gone_is_shown_running(self) -> None:
        if not os.path.exists(os.path.join(self.data_dir, "store")):
            return
        # A monitor that saw its task end records it within moments; wait for that, bounded.
        wait_for(lambda: all(not _dead(t.pid, t.start_ticks) for t in self.running()),
                 timeout=10, message="no task shown running whose process is gone")

    def teardown(self) -> None:
        _close_cached_stores()
        kill_everything_started(self.data_dir)
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(self.root, ignore_errors=True)


GhostMachine.TestCase.settings = settings(max_examples=20, stateful_step_count=12)
TestGhostMachine = GhostMachine.TestCase
