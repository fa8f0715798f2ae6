"""Task lifecycle figures: `ghost run`, `ghost list` at 1,000 tasks, `ghost status`, monitor memory.

    .venv/bin/python bench/lifecycle.py [--rounds 20] [--tasks 1000] [--against OTHER/bin/ghost]
    .venv/bin/python bench/lifecycle.py --list-scaling [--rounds 11] [--against OTHER/bin/ghost]

`--list-scaling` measures `ghost list` with a long history instead (issue 13): 1,000 running +
10,000 finished tasks, and 100,000 finished; `list -n 20` and `list --wide` (100 running) and
the shell's task-id completion beside them. The running tasks are real `sleep` processes whose
`spawned` events are recorded directly (each is its own monitor), so `list` checks 1,000 live
processes exactly as it would check 1,000 ghost tasks.

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


def record_running(data_dir: str, pids: list[int]) -> None:
    """`spawned` events for live processes: `list` finds them running, as real tasks."""
    from ghost.process import identity

    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    boot = identity.boot_id()
    batch = []
    for pid in pids:
        ticks = identity.start_ticks(pid)
        task = str(uuid.uuid4())
        batch.append(make(SPAWNED, task, command=["sleep", "3600"], cwd="/srv/app", pid=pid,
                          pgid=pid, start_ticks=ticks, boot_id=boot,
                          log_path=os.path.join(data_dir, "logs", f"{task}.log"),
                          monitor={"pid": pid, "start_ticks": ticks},
                          actor={"via": "cli", "uid": 0, "user": "bench", "pid": 1}))
    try:
        store.append(batch)
    finally:
        store.close()


def settle(exe: str, env: dict[str, str]) -> None:
    """One real `run` with this build: its write transaction brings the store's views to this
    build's version (a view built by other code would make every read fold the whole log)."""
    took, out = timed([exe, "run", "--json", "true"], env)
    task = json.loads(out)["id"]
    deadline = time.monotonic() + 30
    while json.loads(timed([exe, "status", "--json", task], env)[1])["status"] == "running":
        if time.monotonic() > deadline:
            raise SystemExit("the settling task did not end")
        time.sleep(0.05)
    timed([exe, "list"], env)  # and the first `list` writes its cache, if the build has one


def list_scaling(builds: list[tuple[str, str]], base: str, rounds: int, floor: float) -> None:
    sleepers = [subprocess.Popen(["sleep", "3600"], start_new_session=True)
                for _ in range(1000)]
    try:
        cases = (("1,000 running + 10,000 finished", 10_000, 1000),
                 ("100,000 finished", 100_000, 0))
        for label, finished, running in cases:
            envs = {name: clean_env(GHOST_DATA_DIR=os.path.join(base, name, str(finished)))
                    for name, _ in builds}
            for name, exe in builds:
                fill_store(envs[name]["GHOST_DATA_DIR"], finished)
                record_running(envs[name]["GHOST_DATA_DIR"],
                               [p.pid for p in sleepers[:running]])
                settle(exe, envs[name])
            calls = [(f"ghost list ({label})", ["list"], builds),  # -n is new: this build only
                     (f"ghost list -n 20 ({label})", ["list", "-n", "20"], builds[:1])]
            for tag, tail, which in calls:
                def call(name: str, exe: str, tail: list[str] = tail,
                         envs: dict[str, dict[str, str]] = envs) -> float:
                    return timed([exe, *tail], envs[name])[0]

                report(tag, interleaved(which, call, rounds), floor)
        this = [b for b in builds if b[0] == "this"]
        env = clean_env(GHOST_DATA_DIR=os.path.join(base, "this", "wide"))
        fill_store(env["GHOST_DATA_DIR"], 900)
        record_running(env["GHOST_DATA_DIR"], [p.pid for p in sleepers[:100]])
        settle(GHOST, env)
        completing = {**env, "COMP_WORDS": "ghost stop ", "COMP_CWORD": "2",
                      "_GHOST_COMPLETE": "bash_complete"}
        for tag, argv, call_env in (
                ("ghost list (100 running + 900 finished)", [GHOST, "list"], env),
                ("ghost list --wide (same)", [GHOST, "list", "--wide"], env),
                ("task-id completion, `ghost stop <TAB>`", [GHOST], completing)):
            def once(name: str, exe: str, argv: list[str] = argv,
                     call_env: dict[str, str] = call_env) -> float:
                return timed(argv, call_env)[0]

            report(tag, interleaved(this, once, rounds), floor)
    finally:
        for p in sleepers:
            p.kill()
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--against", metavar="GHOST", help="another build's ghost executable")
    parser.add_argument("--list-scaling", action="store_true",
                        help="`list` with 10,000 and 100,000 finished tasks instead")
    args = parser.parse_args()
    builds = [("this", GHOST)] + ([("against", args.against)] if args.against else [])
    if args.list_scaling:
        base = tempfile.mkdtemp(prefix="ghost-bench-")
        try:
            floor = statistics.median(repeat([sys.executable, "-c", "pass"], clean_env(), 5))
            print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
                  f"{sys.version.split()[0]}")
            list_scaling(builds, base, args.rounds, floor)
        finally:
            shutil.rmtree(base, ignore_errors=True)
        return
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
