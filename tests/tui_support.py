"""Helpers for the `ghost ui` tests: drive the real app headless (Textual's Pilot) and wait with
deadlines; build stores of fixed events for deterministic screenshots."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import pytest

from events.types import EXITED, KILLED, LOST, SPAWNED, STOP_REQUESTED, Event, current_version
from ghost.process import identity
from ghost.process.pump import STDERR, STDOUT, index_path, record

TMUX = shutil.which("tmux")
T0 = 1_780_000_000_000_000_000  # 2026-05-28 20:26:40 UTC: every fixed event counts from here
S = 1_000_000_000


@pytest.fixture(autouse=True)
def ui_store(data_dir: str) -> Any:
    """After each test: wait for the app's reader threads (they see their stop flag on the next
    wake-up, within a second), then close the store this process opened, before data_dir's own
    clean-up opens it again."""
    yield data_dir
    import threading

    from ghost.state.store import close_stores

    for thread in threading.enumerate():
        if thread.name.startswith("ghost-ui-"):
            thread.join(timeout=10)
            assert not thread.is_alive(), f"{thread.name} did not stop"
    close_stores()


def run(coro: Awaitable[Any]) -> Any:
    """Run one async test body (no pytest-asyncio needed)."""
    return asyncio.run(coro)  # type: ignore[arg-type]


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0,
                message: str = "condition") -> Any:
    """Let the app run until `predicate()` is truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            notes = [n.message for n in pilot.app._notifications]
            raise AssertionError(f"timed out after {timeout}s waiting for {message}; "
                                 f"notifications: {notes}")
        await pilot.pause(0.02)


async def loaded(app: Any, pilot: Any) -> None:
    """Until the first task list is on screen: received, and the table (or the "no tasks"
    line) laid out. Shown before layout, the table has no region yet and a click meant for it
    lands on whatever the screen showed before, as a person's would."""
    await until(pilot, lambda: app.main.loaded, message="the first task list")
    main = app.main
    await until(pilot, lambda: (main.table if main.table.display
                                else main.query_one("#empty")).region.area > 0,
                message="the task list laid out on screen")


def row_ids(app: Any) -> list[str]:
    return list(app.main._shown)


def cell(app: Any, task_id: str, column: str) -> str:
    return str(app.main.table.get_cell(task_id, column))


def messages(app: Any) -> list[str]:
    return [n.message for n in app._notifications]


def select(app: Any, task_id: str) -> None:
    assert task_id in app.main._shown, (task_id, app.main._shown, list(app.main.tasks))
    app.main.table.move_cursor(row=app.main._shown.index(task_id), animate=False)


def rendered_lines(log: Any) -> list[str]:
    return ["".join(seg.text for seg in line) for line in log.lines]


# -- stores of fixed events (screenshots) ---------------------------------------------------

def _event(kind: str, task: str, data: dict[str, Any], at: int) -> Event:
    return Event(kind, task, data, at, current_version(kind))


def _spawned(task: str, command: list[str], cwd: str, pid: int, at: int, log_path: str,
             env_keys: Iterable[str] = (), ticks: int = 100, boot: str = "an-older-boot",
             name: str = "") -> Event:
    named = {"name": name, "group": "demo"} if name else {}
    return _event(SPAWNED, task, {**named,
        "command": command, "cwd": cwd, "pid": pid, "pgid": pid, "start_ticks": ticks,
        "boot_id": boot, "log_path": log_path, "env_keys": list(env_keys),
        "monitor": {"pid": pid, "start_ticks": ticks},
        "actor": {"via": "cli", "user": "demo", "uid": 1000, "pid": 4242, "tty": "/dev/pts/1"}},
        at)


def tagged_log(path: str, lines: list[tuple[int, bytes]], at: int) -> None:
    """A log and its chunk index, as the pump writes them for a --timestamps task: a record
    each time the stream changes (the log view marks the stderr lines)."""
    index = [record(0, at, 0)]  # the piece's marker: it starts at logical offset 0
    offset, last = 0, None
    with open(path, "wb") as log:
        for n, (stream, data) in enumerate(lines):
            if stream != last:
                index.append(record(offset, at + n * S // 10, stream))
                last = stream
            log.write(data)
            offset += len(data)
    with open(index_path(path), "wb") as idx:
        idx.write(b"".join(index))


def fixed_store(data_dir: str) -> dict[str, str]:
    """A store holding the same six tasks every time (ids, times, pids, commands fixed).

    The running one is pid 1 (init, alive as long as the machine is), so reconciliation leaves
    it running; tests over this store never act on it. The others carry another boot id, so
    no live process is ever looked up for them.
    """
    from ghost import datadir
    from ghost.state.store import open_store

    base = datadir.prepare(create=True)
    assert base is not None
    logs = datadir.logs_dir(base)
    os.makedirs(logs, mode=0o700, exist_ok=True)
    ids = {
        "web": "0a1b2c3d-0000-4000-8000-000000000001",
        "build": "1b2c3d4e-0000-4000-8000-000000000002",
        "tests": "2c3d4e5f-0000-4000-8000-000000000003",
        "worker": "3d4e5f60-0000-4000-8000-000000000004",
        "lost": "4e5f6071-0000-4000-8000-000000000005",
        "lint": "5f607182-0000-4000-8000-000000000006",
    }
    # Only the running task's log is read (the log view); the others get a fixed path, so the
    # details screen shows the same text whatever the test's temporary directory.
    log_of = {name: f"/home/demo/.local/share/ghost/logs/{tid}.log" for name, tid in ids.items()}
    log_of["web"] = os.path.join(logs, f"{ids['web']}.log")
    lines = [(STDOUT, f"GET /api/items/{i} 200 {i * 3} ms\n".encode()) for i in range(1, 41)]
    lines.insert(38, (STDERR, b"npm WARN config production Use `--omit=dev` instead.\n"))
    lines.append((STDOUT, b"\x1b[32mready\x1b[0m on http://localhost:5173 \x1b]0;pwned\x07\n"))
    lines.append((STDERR, b"\x1b[31merror\x1b[0m: \x1b[2Jcache miss for /favicon.ico\n"))
    tagged_log(log_of["web"], lines, T0 + 1200 * S)
    boot = identity.boot_id()
    init_ticks = identity.start_ticks(1)
    events = [
        _spawned(ids["build"], ["make", "-j4", "all"], "/home/demo/app", 20101, T0,
                 log_of["build"]),
        _event(EXITED, ids["build"], {"code": 0, "end_ns": T0 + 42 * S}, T0 + 42 * S),
        _spawned(ids["tests"], ["pytest", "-x", "tests/"], "/home/demo/app", 20202, T0 + 60 * S,
                 log_of["tests"], env_keys=["CI"]),
        _event(EXITED, ids["tests"], {"code": 1, "end_ns": T0 + 95 * S}, T0 + 95 * S),
        _spawned(ids["worker"], ["python", "worker.py", "--queue", "jobs"], "/home/demo/svc",
                 20303, T0 + 120 * S, log_of["worker"], name="worker"),
        _event(STOP_REQUESTED, ids["worker"], {
            "signal": "SIGTERM", "timeout": 10.0, "force": False,
            "actor": {"via": "tui", "user": "demo", "uid": 1000, "pid": 4243, "tty": ""}},
            T0 + 400 * S),
        _event(KILLED, ids["worker"], {"signal": "SIGTERM", "signum": 15,
                                      "end_ns": T0 + 401 * S}, T0 + 401 * S),
        _spawned(ids["lost"], ["tail", "-f", "/var/log/syslog"], "/", 20404, T0 + 500 * S,
                 log_of["lost"]),
        _event(LOST, ids["lost"], {"reason": "the machine rebooted since the task started"},
              T0 + 900 * S),
        _spawned(ids["lint"], ["ruff", "check", "."], "/home/demo/app", 20505, T0 + 1000 * S,
                 log_of["lint"]),
        _event(EXITED, ids["lint"], {"code": 0, "end_ns": T0 + 1001 * S}, T0 + 1001 * S),
        _spawned(ids["web"], ["npm", "run", "dev"], "/home/demo/web", 1, T0 + 1200 * S,
                 log_of["web"], env_keys=["PORT", "API_TOKEN"], ticks=init_ticks, boot=boot,
                 name="web"),
    ]
    store = open_store(write=True)
    assert store is not None
    store.append(events)
    return ids


def fixed_clock() -> int:
    return T0 + 1500 * S


# -- a real terminal (tmux) ---------------------------------------------------------------

class Terminal:
    """One tmux server on a private socket, running one command in a 100x30 window."""

    def __init__(self, socket: str, command: str, env: dict[str, str]) -> None:
        self.base = ["tmux", "-S", socket]
        self.env = env
        subprocess.run([*self.base, "new-session", "-d", "-x", "100", "-y", "30", "-s", "ui",
                        command], env=env, check=True, timeout=30)

    def screen(self) -> str:
        result = subprocess.run([*self.base, "capture-pane", "-p", "-t", "ui"], env=self.env,
                                capture_output=True, timeout=30)
        return result.stdout.decode(errors="replace")

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "ui", *keys], env=self.env, check=True,
                       timeout=30)

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "the screen") -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.screen()
            if predicate(shown):
                return shown
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{shown}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return subprocess.run([*self.base, "has-session", "-t", "ui"], env=self.env,
                              capture_output=True, timeout=30).returncode == 0

    def close(self) -> None:
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True,
                       timeout=30)
