"""Helpers for end-to-end tests: run the real CLI, wait with deadlines, kill what we started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

GHOST = [sys.executable, "-m", "ghost"]


def ghost(*args: str, env: dict[str, str] | None = None, timeout: float = 60,
          input: bytes | None = None, cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run `ghost ARGS` as a real process; stdout/stderr captured as text."""
    return subprocess.run([*GHOST, *args], env=env, timeout=timeout, input=input,
                          capture_output=True, cwd=cwd)


def text(result: subprocess.CompletedProcess) -> tuple[str, str]:
    return result.stdout.decode(errors="replace"), result.stderr.decode(errors="replace")


def run_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`ghost run --json ARGS` -> the started task's JSON (asserts success)."""
    result = ghost("run", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout.decode().splitlines()[0])


def status_json(task_id: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = ghost("status", "--json", task_id, env=env)
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def wait_ended(task_id: str, env: dict[str, str] | None = None,
               timeout: float = 10.0) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        data = status_json(task_id, env)
        return data if data["status"] != "running" else None

    return wait_for(ended, timeout, message=f"task {task_id} to end")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError):
        return False


MONITORED = ("spawned", "queued", "restart_scheduled")  # events whose `monitor` is a monitor


def kill_everything_started(data_dir: str) -> None:
    """Kill every task process group and monitor recorded in the store under `data_dir`."""
    store_path = os.path.join(data_dir, "store")
    if not os.path.exists(os.path.join(store_path, "data.mdb")):
        return
    from events.store import Store
    from events.types import SPAWNED, Event
    from ghost.process import identity as proc

    # Monitors first (a restart policy's monitor would start the next attempt of a task we
    # kill; a queued task's monitor has no task yet), then the tasks; again if meanwhile a
    # monitor recorded a start we had not seen.
    seen = -1
    for _ in range(3):
        store = Store.open(store_path, create=False)
        if store is None:
            return
        try:
            if store.last_seq() == seen:
                return
            seen = store.last_seq()
            events = [e for e in store.scan() if isinstance(e, Event)]
        finally:
            store.close()
        for event in events:
            # A `restart_requested` names the restarting process (maybe this test process,
            # restarting in-process through the TUI or the web API): never a monitor to kill.
            if event.type not in MONITORED:
                continue
            monitor = event.data.get("monitor") or {}
            mpid, mticks = int(monitor.get("pid", 0)), int(monitor.get("start_ticks", 0))
            if mpid > 1 and mpid != os.getpid() and proc.start_ticks(mpid) == mticks:
                try:
                    os.kill(mpid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for event in events:
            if event.type == SPAWNED:
                proc.signal_task(event.data["pid"], event.data["pgid"],
                                 event.data["start_ticks"], signal.SIGKILL)
