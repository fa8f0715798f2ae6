"""`ghost ui` speed: first paint with 1,000 tasks, table update after a commit, idle CPU, log
follow latency. Textual's headless app (`run_test`), the real store, the real reader threads.

    .venv/bin/python bench/tui.py            # 1,000 tasks, 15 samples, 10 s idle
    .venv/bin/python bench/tui.py --quick    # 200 tasks, 3 samples, 2 s idle (smoke test)

* first paint: from the app starting to the first screenful of rows drawn, the table holding
  every task (store already warm: the OS cache holds it, as it does for a user who just ran
  `ghost list`);
* table update: from the commit of a `spawned` event (made in this process, in the app's own
  event loop) to the new row being drawn (TaskTable.render_line returned it), woken by the
  store's wake file like `list --watch`;
* idle CPU: process CPU time over wall time while nothing happens, with 1,000 tasks listed and
  5 running for over a minute (their age then changes once a minute);
* log follow: from a write to a running task's log file to the line being in the log view.

Prints medians (and the worst sample) as a Markdown table. Every task it starts is killed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SETTLE = 0.25  # between samples: more than watch_tasks' 50 ms redraw throttle


def fill(count: int) -> None:
    """`count` finished tasks, appended as events in one go (no processes needed)."""
    from events.types import EXITED, SPAWNED, Event, current_version
    from ghost.state.store import open_store

    store = open_store(write=True)
    assert store is not None
    now = time.time_ns() - count * 1_000_000_000
    events = []
    for i in range(count):
        task = f"{i:08x}-0000-4000-8000-{i:012x}"
        at = now + i * 1_000_000_000
        events.append(Event(SPAWNED, task, {
            "command": ["sh", "-c", f"echo {i}"], "cwd": "/tmp", "pid": 100000 + i,
            "pgid": 100000 + i, "start_ticks": 1, "boot_id": "bench-boot",
            "log_path": f"/nonexistent/{task}.log"}, at, current_version(SPAWNED)))
        events.append(Event(EXITED, task, {"code": i % 3, "end_ns": at + 5_000_000},
                            at + 5_000_000, current_version(EXITED)))
    store.append(events)


def start_tasks(n: int, command: list[str]) -> list[Any]:
    """`n` real running tasks, through the CLI (as a user would start them)."""
    import json

    started = []
    for _ in range(n):
        out = subprocess.run([sys.executable, "-m", "ghost", "run", "--json", *command],
                             capture_output=True, check=True, timeout=60)
        started.append(json.loads(out.stdout.decode().splitlines()[0]))
    return started


def kill_all(started: list[Any]) -> None:
    from ghost.process import identity
    from ghost.state.store import open_store
    from projections.checkpoint import load_tasks

    store = open_store(write=False)
    tasks = load_tasks(store) if store is not None else {}
    for item in started:
        task = tasks.get(item["id"])
        if task is not None:
            identity.signal_task(task.pid, task.pgid, task.start_ticks, signal.SIGKILL)


async def until(pilot: Any, predicate: Callable[[], Any], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        await pilot.pause(0.001)


def stamp_calls(obj: Any, name: str, seen: dict[str, float],
                key: Callable[..., str | None]) -> None:
    """Wrap obj.name so that the time it returns is noted under key(*args); measuring this
    way needs no polling loop beside the app (which would compete with its reader thread)."""
    original = getattr(obj, name)

    def wrapper(*args: Any) -> Any:
        result = original(*args)
        found = key(*args)
        if found is not None:
            seen.setdefault(found, time.perf_counter())
        return result

    setattr(obj, name, wrapper)


async def waited(seen: dict[str, float], key: str, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while key not in seen:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {key}")
        await asyncio.sleep(0.05)  # coarse: the time is noted by the wrapper, not here
    return seen[key]


def watch_drawing() -> dict[str, float]:
    """The time each task's row was first drawn (TaskTable.render_line returned it), noted by
    a wrapper: measuring needs no polling loop beside the app (which would compete with it)."""
    from ghost.tui.table import TaskTable

    drawn: dict[str, float] = {}
    original = TaskTable.__dict__["render_line"]

    def render_line(self: Any, y: int) -> Any:
        strip = original(self, y)
        row = y - 1 + round(self.scroll_y)
        if y and row < len(self.keys):
            drawn.setdefault(self.keys[row], time.perf_counter())
        return strip

    TaskTable.render_line = render_line  # type: ignore[method-assign]
    return drawn


async def first_paint(count: int, drawn: dict[str, float]) -> float:
    """From the app's start to the first screenful of a table holding every task drawn."""
    from ghost.tui.app import GhostApp

    drawn.clear()
    app = GhostApp()
    start = time.perf_counter()
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.main.table
        await until(pilot, lambda: app.main.loaded and table.row_count >= count and drawn)
        first = max(drawn.values()) - start  # (every row on screen, not just the first)
        await pilot.press("q")
    return first


async def live(samples: int, idle: float, running: list[Any], running_since: float,
               drawn: dict[str, float]) -> dict[str, list[float]]:
    from events.types import EXITED, SPAWNED, Event, current_version
    from ghost.state.store import open_store
    from ghost.tui.app import GhostApp
    from ghost.tui.logscreen import LogScreen

    store = open_store(write=True)
    assert store is not None
    out: dict[str, list[float]] = {"update": [], "follow": [], "idle": []}
    app = GhostApp()
    lines: dict[str, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.main.loaded)
        for i in range(samples):
            await pilot.pause(SETTLE)
            new = f"ffff{i:04x}-0000-4000-8000-{i:012x}"
            at = time.time_ns()
            store.append([Event(SPAWNED, new, {
                "command": ["true"], "cwd": "/", "pid": 1, "pgid": 1, "start_ticks": 1,
                "boot_id": "bench-boot", "log_path": "/nonexistent"}, at,
                current_version(SPAWNED)),
                Event(EXITED, new, {"code": 0, "end_ns": at}, at, current_version(EXITED))])
            committed = time.perf_counter()
            done = await waited(drawn, new)  # its row drawn (the newest: at the top)
            out["update"].append(done - committed)
        # Idle: nothing changes; only the reader threads' safety-net wake-ups and the
        # running tasks' duration tick run. A running task's age is shown in whole minutes
        # once it is a minute old (before that, in seconds: a redraw every second).
        await asyncio.sleep(max(1.0, running_since + 62 - time.monotonic()))
        cpu, wall = time.process_time(), time.perf_counter()
        await pilot.pause(idle)
        out["idle"].append((time.process_time() - cpu) / (time.perf_counter() - wall))
        # Follow: a running task's log view, and lines appended to its file.
        task = app.main.tasks[running[0]["id"]]
        screen = LogScreen(task)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.feed is not None)
        await pilot.pause(0.5)
        stamp_calls(screen, "_write", lines,
                    lambda batch: batch[-1][0].decode(errors="replace") if batch else None)
        with open(task.log_path, "ab") as log:
            for i in range(samples):
                await pilot.pause(SETTLE)
                log.write(f"bench line {i}\n".encode())
                log.flush()
                written = time.perf_counter()
                out["follow"].append(await waited(lines, f"bench line {i}") - written)
        await pilot.press("escape", "q")
    return out


def import_time(runs: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import ghost.tui.app; " \
           "print(time.perf_counter() - t)"
    return [float(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                                 text=True, timeout=60).stdout) for _ in range(runs)]


def row(name: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
    med = statistics.median(values) * scale
    worst = max(values) * scale
    return f"| {name} | {med:.1f} {unit} | {worst:.1f} {unit} | {len(values)} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    count, samples, idle = (200, 3, 2.0) if args.quick else (1000, 15, 10.0)
    with tempfile.TemporaryDirectory(prefix="ghost-bench-tui-") as tmp:
        os.environ["GHOST_DATA_DIR"] = os.path.join(tmp, "data")
        fill(count)
        drawn = watch_drawing()
        running = start_tasks(5, ["sleep", "600"])
        running_since = time.monotonic()
        try:
            paints = [asyncio.run(first_paint(count + 5, drawn))
                      for _ in range(max(3, samples // 3))]
            cold = paints.pop(0)  # the first run also pays for importing Textual's modules
            results = asyncio.run(live(samples, idle, running, running_since, drawn))
        finally:
            kill_all(running)
            from ghost.state.store import close_stores

            time.sleep(1.2)  # let the app's reader threads see their stop flag
            close_stores()
        imports = import_time(3)
    print(f"ghost ui, headless (Textual {_textual_version()}), {count} finished + 5 running "
          f"tasks, {os.cpu_count()} CPUs\n")
    print("| measure | median | worst | samples |")
    print("|---|---|---|---|")
    print(row("import ghost.tui.app (cold process)", imports))
    print(row(f"first paint, {count + 5} tasks (app start -> first screenful drawn)", paints))
    print(row("first paint in a fresh process (once)", [cold]))
    print(row("table update: commit -> new row drawn", results["update"]))
    print(row("log follow: write -> line in the view", results["follow"]))
    print(row(f"idle CPU ({idle:.0f} s; running tasks over a minute old)", results["idle"],
              unit="% of a core", scale=100))


def _textual_version() -> str:
    from importlib.metadata import version

    return version("textual")


if __name__ == "__main__":
    main()
