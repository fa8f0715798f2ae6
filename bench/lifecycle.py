"""Task lifecycle figures: `ghost run`, `ghost list` at 1,000 tasks, `ghost status`, monitor memory.

    .venv/bin/python bench/lifecycle.py [--rounds 20] [--tasks 1000] [--against OTHER/bin/ghost]

Everything runs in a throwaway data dir (GHOST_DATA_DIR), through the installed `ghost` entry
point next to this interpreter, as a user would call it. Figures are medians (with min-max) of
wall time per call, and ratios against `python -c pass` measured in the same run (the floor any
Python CLI pays). The 1,000 tasks for `list` are recorded directly in the store as realistic
`spawned` + `exited` event pairs (the same events a monitor writes), so setting them up takes a
second instead of 1,000 process starts; `list` cannot tell the difference.

`--against` names another build's `ghost` (say, the previous commit installed in its own venv):
every figure is then measured for both in the same run, calls alternating, each build in its own
data dir, with the ratio this/other, so a change is compared under the same machine state.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

from peers.tools import clean_env  # noqa: E402  (no PYTHONDONTWRITEBYTECODE)

from events.store import Store  # noqa: E402
from events.types import EXITED, SPAWNED, Event, make  # noqa: E402
from projections.checkpoint import VIEWS  # noqa: E402

BIN = os.path.dirname(sys.executable)
GHOST = os.path.join(BIN, "ghost")


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, bytes]:
    began = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, check=False)
    took = time.perf_counter() - began
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.decode()}")
    return took, result.stdout


def summary(name: str, samples: list[float], floor: float | None = None) -> str:
    ms = sorted(s * 1000 for s in samples)
    line = (f"{name:<38} median {statistics.median(ms):7.1f} ms  "
            f"(min {ms[0]:.1f}, max {ms[-1]:.1f}, n={len(ms)})")
    if floor:
        line += f"  = {statistics.median(ms) / (floor * 1000):.1f}x python -c pass"
    return line


def repeat(argv: list[str], env: dict[str, str], rounds: int) -> list[float]:
    timed(argv, env)  # warm-up: page cache, .pyc files
    return [timed(argv, env)[0] for _ in range(rounds)]


def spawned_event(task: str, data_dir: str) -> Event:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        return next(e for e in store.task_events(task)
                    if isinstance(e, Event) and e.type == SPAWNED)
    finally:
        store.close()


def memory_kib(pid: int) -> dict[str, int]:
    """Rss and Pss of one process, in KiB, from /proc/PID/smaps_rollup."""
    found = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                found[key] = int(rest.split()[0])
    return found


def bench_run(ghost: str, env: dict[str, str], data_dir: str) -> tuple[float, dict[str, int]]:
    """One `ghost run sleep 60`: its time, and its monitor's memory while the task runs."""
    took, out = timed([ghost, "run", "--json", "sleep", "60"], env)
    task = json.loads(out)
    monitor = int(spawned_event(task["id"], data_dir).data["monitor"]["pid"])
    memory = memory_kib(monitor)
    timed([ghost, "kill", task["id"]], env)
    return took, memory


def interleaved(builds: list[tuple[str, str]], call: Callable[[str, str], float],
                rounds: int) -> dict[str, list[float]]:
    """`call(name, exe)` for every build, alternating the order each round; one warm-up each."""
    samples: dict[str, list[float]] = {name: [] for name, _ in builds}
    for name, exe in builds:
        call(name, exe)
    for r in range(rounds):
        for name, exe in builds if r % 2 == 0 else builds[::-1]:
            samples[name].append(call(name, exe))
    return samples


def report(label: str, samples: dict[str, list[float]], floor: float) -> None:
    for name, values in samples.items():
        tag = label if len(samples) == 1 else f"{label} [{name}]"
        print(summary(tag, values, floor))
    if len(samples) == 2:
        this, other = (statistics.median(v) for v in samples.values())
        print(f"{'':<38} this/against = {this / other:.3f}")


def fill_store(data_dir: str, count: int, newest: str = "") -> str:
    """Record `count` finished tasks as a monitor would; returns the newest task's id (given as
    `newest`, it is that id: two builds' stores then hold the same task to ask for)."""
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    logs = os.path.join(data_dir, "logs")
    task = ""
    try:
        for start in range(0, count, 500):
            batch = []
            for n in range(start, min(count, start + 500)):
                task = newest if newest and n == count - 1 else str(uuid.uuid4())
                batch.append(make(
                    SPAWNED, task, command=["python3", "worker.py", f"--shard={n}"],
                    cwd="/srv/app", pid=10_000 + n, pgid=10_000 + n, start_ticks=1000 + n,
                    boot_id="bench", log_path=os.path.join(logs, f"{task}.log"),
                    env_keys=["SHARD"], monitor={"pid": 20_000 + n, "start_ticks": 999 + n},
                    actor={"via": "cli", "uid": 0, "user": "bench", "pid": 1, "tty": ""}))
                batch.append(make(EXITED, task, code=n % 3, end_ns=time.time_ns(),
                                  rusage={"utime": 0.1, "stime": 0.01, "maxrss_kb": 9000},
                                  actor={"via": "monitor"}))
            store.append(batch)
    finally:
        store.close()
    return task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--against", metavar="GHOST", help="another build's ghost executable")
    args = parser.parse_args()
    builds = [("this", GHOST)] + ([("against", args.against)] if args.against else [])
    base = tempfile.mkdtemp(prefix="ghost-bench-")
    try:
        envs = {name: clean_env(GHOST_DATA_DIR=os.path.join(base, name, "run"))
                for name, _ in builds}
        floor_samples = repeat([sys.executable, "-c", "pass"], envs["this"], args.rounds)
        floor = statistics.median(floor_samples)
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
              f"{sys.version.split()[0]}")
        print(summary("python -c pass (floor)", floor_samples))
        memory: dict[str, list[dict[str, int]]] = {name: [] for name, _ in builds}

        def run_once(name: str, exe: str) -> float:
            took, used = bench_run(exe, envs[name], envs[name]["GHOST_DATA_DIR"])
            memory[name].append(used)
            return took

        report("ghost run sleep 60", interleaved(builds, run_once, args.rounds), floor)
        for name, used in memory.items():
            rss = statistics.median(m["Rss"] for m in used)
            pss = statistics.median(m["Pss"] for m in used)
            private = statistics.median(m["Private_Clean"] + m["Private_Dirty"] for m in used)
            tag = "" if len(builds) == 1 else f" [{name}]"
            print(f"{'monitor memory while its task runs' + tag:<38} RSS {rss / 1024:.1f} MiB, "
                  f"PSS {pss / 1024:.1f} MiB, private {private / 1024:.1f} MiB "
                  f"(median of {len(used)} monitors)")

        list_envs = {name: clean_env(GHOST_DATA_DIR=os.path.join(base, name, "list"))
                     for name, _ in builds}
        newest = ""
        for name, exe in builds:
            newest = fill_store(list_envs[name]["GHOST_DATA_DIR"], args.tasks, newest)
            lines = timed([exe, "list"], list_envs[name])[1].count(b"\n")
            assert lines == args.tasks + 2, lines
        for label, tail in ((f"ghost list ({args.tasks} tasks)", ["list"]),
                            (f"ghost list --json ({args.tasks} tasks)", ["list", "--json"]),
                            (f"ghost status ID ({args.tasks} tasks)", ["status", newest]),
                            (f"ghost status PREFIX ({args.tasks} tasks)",
                             ["status", newest[:8]])):
            def call(name: str, exe: str, tail: list[str] = tail) -> float:
                return timed([exe, *tail], list_envs[name])[0]

            report(label, interleaved(builds, call, args.rounds), floor)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
