"""History, time travel and export over a large event log.

Builds a throwaway store of N events (default 1,000,000 over 100,000 tasks, ten events each,
tasks overlapping in time, stamped evenly across the last 30 days), then times fresh `ghost`
processes (median of --runs):
    ghost history ID          one task's whole life, through the per-task index
    ghost list --at T         the task list as it was halfway through the log
    ghost events > /dev/null  the whole feed, as events per second (and with one process)
    ghost events --format msgpack > /dev/null

    .venv/bin/python bench/history.py            # 1M events (building takes a minute or two)
    .venv/bin/python bench/history.py --quick    # 20k events, a few seconds
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from peers.tools import clean_env  # noqa: E402  (no PYTHONDONTWRITEBYTECODE)

from events.store import Store  # noqa: E402
from events.types import Event, current_version  # noqa: E402
from projections.checkpoint import VIEWS  # noqa: E402

EVENTS_PER_TASK = 10
WAVE = 1_000  # tasks alive at once: their events interleave in the log
SPAN_NS = 30 * 86400 * 10**9
VIAS = ("cli", "mcp", "tui", "web")
TARGETS = {"history": 0.100, "list_at": 3.0, "export_rate": 200_000}


def _actor(via: str, pid: int) -> dict:
    return {"via": via, "uid": 1000, "user": "dev", "pid": pid, "tty": "/dev/pts/3"}


def task_events(task: str, n: int) -> list[tuple[str, dict]]:
    """Ten events of one task: spawned, seven stop requests, its end, and (mostly) cleaned."""
    spawned = {"command": ["python", "-m", "http.server", str(8000 + n % 1000)],
               "cwd": "/home/dev/project", "pid": 10_000 + n, "pgid": 10_000 + n,
               "start_ticks": 123_456 + n, "boot_id": "5e1c2d1e-8f0a-4a53-9b43-3c5e0f6b8a11",
               "log_path": f"/home/dev/.local/share/ghost/logs/{task}.log",
               "env_keys": ["PORT"], "monitor": {"pid": 9_000 + n, "start_ticks": 123_400 + n},
               "actor": _actor("cli", 8_000 + n)}
    out: list[tuple[str, dict]] = [("spawned", spawned)]
    for i in range(7):
        out.append(("stop_requested", {"signal": "SIGKILL" if i == 6 else "SIGTERM",
                                       "timeout": 10.0, "force": False, "escalated": i == 6,
                                       "actor": _actor(VIAS[i % 4], 7_000 + n)}))
    rusage = {"utime": 0.25, "stime": 0.05, "maxrss_kb": 20_480}
    if n % 2:
        out.append(("exited", {"code": n % 3, "end_ns": 0, "rusage": rusage,
                               "actor": _actor("monitor", 9_000 + n)}))
    else:
        out.append(("killed", {"signal": "SIGTERM", "signum": 15, "end_ns": 0,
                               "core_dumped": False, "rusage": rusage,
                               "actor": _actor("monitor", 9_000 + n)}))
    if n % 5:
        out.append(("cleaned", {"log_removed": True, "actor": _actor("cli", 6_000 + n)}))
    else:
        out.append(("stop_requested", {"signal": "SIGTERM", "timeout": 10.0, "force": False,
                                       "actor": _actor("cli", 5_000 + n)}))
    return out


def build(path: str, total: int) -> tuple[list[str], int, int]:
    """Fill a store; returns the task ids, the first and the last event time."""
    tasks = max(1, total // EVENTS_PER_TASK)
    store = Store.open(path, create=True, views=VIEWS)
    assert store is not None
    start = time.time_ns() - SPAN_NS
    step = SPAN_NS // max(1, tasks * EVENTS_PER_TASK)
    ids: list[str] = []
    stamp = start
    try:
        for first in range(0, tasks, WAVE):
            wave = [(str(uuid.uuid4()), n) for n in range(first, min(tasks, first + WAVE))]
            ids.extend(t for t, _ in wave)
            lives = [task_events(t, n) for t, n in wave]
            batch: list[Event] = []
            for round_ in range(EVENTS_PER_TASK):
                for (task, _), life in zip(wave, lives, strict=True):
                    kind, data = life[round_]
                    stamp += step
                    if "end_ns" in data:
                        data = {**data, "end_ns": stamp}
                    batch.append(Event(kind, task, data, stamp, current_version(kind)))
            store.append(batch)
    finally:
        store.close()
    return ids, start, stamp


def timed(cmd: list[str], env: dict[str, str], runs: int, stdout=subprocess.DEVNULL) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run(cmd, env=env, stdout=stdout, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - began)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.decode()}")
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20k events, 3 runs")
    parser.add_argument("--runs", type=int, default=None, help="runs per command (default 5)")
    args = parser.parse_args()
    total = 20_000 if args.quick else args.events
    runs = args.runs or (3 if args.quick else 5)
    ghost = [os.path.join(os.path.dirname(sys.executable), "ghost")]
    if not os.path.exists(ghost[0]):
        ghost = [sys.executable, "-m", "ghost"]
    base = tempfile.mkdtemp(prefix="ghost-bench-history-")
    try:
        began = time.perf_counter()
        ids, first_ns, last_ns = build(os.path.join(base, "store"), total)
        built = time.perf_counter() - began
        env = clean_env(GHOST_DATA_DIR=base)
        size = os.path.getsize(os.path.join(base, "store", "data.mdb"))
        middle = datetime.fromtimestamp((first_ns + last_ns) / 2e9).isoformat()
        one = ids[len(ids) // 2]
        rows = [
            ("python -c pass (interpreter floor)",
             timed([sys.executable, "-c", "pass"], env, runs), ""),
            ("ghost history ID", timed([*ghost, "history", one], env, runs),
             f"target <= {TARGETS['history'] * 1000:.0f} ms"),
            ("ghost history ID (prefix)", timed([*ghost, "history", one[:8]], env, runs), ""),
            ("ghost list --at MIDDLE", timed([*ghost, "list", "--at", middle], env, runs),
             f"target <= {TARGETS['list_at']:.0f} s"),
        ]
        export = timed([*ghost, "events"], env, runs)
        alone = timed([*ghost, "events"], {**env, "GHOST_EXPORT_WORKERS": "1"}, runs)
        packed = timed([*ghost, "events", "--format", "msgpack"], env, runs)
        n = len(ids) * EVENTS_PER_TASK
        print(f"store: {n:,} events, {len(ids):,} tasks, {size / 1e6:.1f} MB, "
              f"built in {built:.1f} s ({n / built:,.0f} events/s); median of {runs} runs, "
              "each a fresh process")
        from tabulate import tabulate

        table = [(name, f"{secs * 1000:,.1f} ms", note) for name, secs, note in rows]
        table.append(("ghost events > /dev/null (jsonl)", f"{export * 1000:,.1f} ms",
                      f"{n / export:,.0f} events/s (target >= 200,000)"))
        table.append(("ghost events, GHOST_EXPORT_WORKERS=1", f"{alone * 1000:,.1f} ms",
                      f"{n / alone:,.0f} events/s"))
        table.append(("ghost events --format msgpack", f"{packed * 1000:,.1f} ms",
                      f"{n / packed:,.0f} events/s"))
        print(tabulate(table, headers=("command", "median wall", "note"),
                       disable_numparse=True))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
