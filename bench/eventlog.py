"""Event-log benchmark: ghost's LMDB store against SQLite in WAL mode, same workloads, one run.

Prints a Markdown table of medians over several runs:
  - durable single appends (one synced transaction per event): p50/p99 latency and appends/s
  - batched appends (1,000 events per transaction): events/s
  - scan + decode, and a full fold into the task view, of 1,000,000 events (250k tasks)
  - 8 concurrent writer processes, one durable transaction per event: events/s, worst commit
    wait, and a check that nothing was lost (count, gap-free seqs, each writer's order)

SQLite: table events(seq INTEGER PRIMARY KEY, body BLOB), journal_mode=WAL, synchronous=FULL,
BEGIN IMMEDIATE per transaction, bodies encoded by the same codec (events.codec).

    python bench/eventlog.py            # the full run (a few minutes)
    python bench/eventlog.py --quick    # a small smoke run (20k events instead of 1M)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from typing import Any

import lmdb
import msgpack

from events import codec
from events.store import Store
from events.types import Corrupt, Event, make
from projections.checkpoint import VIEWS
from projections.tasks import rebuild

WRITERS = 8
TARGETS = {"append_p50_ms": 0.5, "batched_per_s": 250_000, "fold_s": 2.5, "writers_per_s": 2_500}


# -- engines -----------------------------------------------------------------------------------

class Lmdb:
    name = "LMDB"

    def __init__(self, path: str, views: Any = ()) -> None:
        self.store = Store.open(path, create=True, views=views)

    def append(self, events: list[Event]) -> None:
        self.store.append(events)

    def scan(self) -> Iterator[Event | Corrupt]:
        return self.store.scan()

    def close(self) -> None:
        self.store.close()


class Sqlite:
    name = "SQLite"

    def __init__(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
        self.db = sqlite3.connect(os.path.join(path, "events.db"), timeout=600,
                                  isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, body BLOB)")

    def append(self, events: list[Event]) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.executemany("INSERT INTO events(body) VALUES (?)",
                                [(codec.encode(e),) for e in events])
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def scan(self) -> Iterator[Event | Corrupt]:
        decode = codec.decode
        for seq, body in self.db.execute("SELECT seq, body FROM events ORDER BY seq"):
            yield decode(seq, body)

    def close(self) -> None:
        self.db.close()


def open_engine(name: str, path: str) -> Lmdb | Sqlite:
    return Lmdb(path) if name == "LMDB" else Sqlite(path)


# -- realistic events ----------------------------------------------------------------------------

def task_events(i: int, phase: int) -> Event:
    """Phase 0..3 of task i: spawned, stop requested, killed or exited, cleaned (or kept)."""
    task = f"{i:08x}-6b1c-4d2e-9f3a-{i:012x}"
    actor = {"interface": "cli", "pid": 4242, "user": "dev"}
    if phase == 0:
        return make("spawned", task, command=["python3", "-m", "http.server", str(8000 + i % 99)],
                    cwd="/home/dev/project", pid=10_000 + i % 50_000, pgid=10_000 + i % 50_000,
                    start_ticks=123_456 + i, boot_id="5c7e0a5b6d2f4c21a8a1e3f9b0d4c6e2",
                    log_path=f"/home/dev/.local/share/ghost/logs/{task}.log",
                    env_keys=["PATH", "HOME", "LANG"], monitor={"pid": 9_000, "start_ticks": 1},
                    actor=actor)
    if phase == 1:
        return make("stop_requested", task, signal="TERM", timeout=10.0, force=False,
                    actor=actor)
    if phase == 2:
        rusage = {"utime": 0.12, "stime": 0.03, "maxrss_kb": 24_576}
        if i % 2:
            return make("exited", task, code=0, end_ns=time.time_ns(), rusage=rusage)
        return make("killed", task, signal="TERM", signum=15, end_ns=time.time_ns(),
                    rusage=rusage)
    if i % 2:
        return make("cleaned", task, log_removed=True, actor=actor)
    return make("stop_requested", task, signal="KILL", timeout=0.0, force=True, actor=actor)


def lifecycle_batches(tasks: int, batch: int = 1000) -> Iterator[list[Event]]:
    """4 events per task, tasks overlapping in groups of 250 as a busy machine would log them."""
    group = 250
    out: list[Event] = []
    for first in range(0, tasks, group):
        for phase in range(4):
            for i in range(first, min(first + group, tasks)):
                out.append(task_events(i, phase))
                if len(out) == batch:
                    yield out
                    out = []
    if out:
        yield out


# -- workloads -------------------------------------------------------------------------------------

def single_appends(engine: Lmdb | Sqlite, count: int) -> dict[str, float]:
    events = [task_events(i // 4, i % 4) for i in range(count)]
    latencies = []
    start = time.perf_counter()
    for event in events:
        t0 = time.perf_counter()
        engine.append([event])
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {"p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3,
            "per_s": count / total}


def batched_appends(engine: Lmdb | Sqlite, count: int) -> dict[str, float]:
    batches = list(lifecycle_batches(count // 4))
    start = time.perf_counter()
    for batch in batches:
        engine.append(batch)
    return {"per_s": count / (time.perf_counter() - start)}


def scan_and_fold(engine: Lmdb | Sqlite) -> dict[str, float]:
    start = time.perf_counter()
    n = sum(1 for _ in engine.scan())
    scanned = time.perf_counter() - start
    start = time.perf_counter()
    view = rebuild(engine.scan())
    folded = time.perf_counter() - start
    return {"scan_s": scanned, "fold_s": folded, "events": n, "tasks": len(view)}


def concurrent_writers(engine_name: str, path: str, each: int) -> dict[str, float]:
    open_engine(engine_name, path).close()  # create it once, before the race
    procs = [subprocess.Popen([sys.executable, __file__, "--writer", engine_name, path, str(w),
                               str(each)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for w in range(WRITERS)]
    try:
        for proc in procs:
            if proc.stdout.readline() != "ready\n":
                raise RuntimeError(f"{engine_name} writer failed to start")
        for proc in procs:
            proc.stdin.write("g")
            proc.stdin.close()
        reports = [json.loads(proc.stdout.read()) for proc in procs]
        for proc in procs:
            if proc.wait(600) != 0:
                raise RuntimeError(f"{engine_name} writer exited with {proc.returncode}")
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    wall = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    engine = open_engine(engine_name, path)
    try:
        intact = nothing_lost(engine.scan(), each)
    finally:
        engine.close()
    waits = [w for r in reports for w in r["waits"]]
    return {"per_s": WRITERS * each / wall, "max_wait_ms": max(waits) * 1e3,
            "p99_wait_ms": percentile(waits, 99) * 1e3, "intact": intact}


def writer_main(engine_name: str, path: str, writer: int, each: int) -> None:
    engine = open_engine(engine_name, path)
    task = f"writer-{writer}"
    events = [make("stop_requested", task, signal="TERM", timeout=1.0, force=False, n=n)
              for n in range(each)]
    print("ready", flush=True)
    sys.stdin.read(1)
    waits = []
    start = time.monotonic()
    for event in events:
        t0 = time.perf_counter()
        engine.append([event])
        waits.append(time.perf_counter() - t0)
    end = time.monotonic()
    engine.close()
    print(json.dumps({"start": start, "end": end, "waits": waits}), flush=True)


def nothing_lost(events: Iterable[Event | Corrupt], each: int) -> bool:
    """Every writer's events present once, in its order, under gap-free seqs 1..N."""
    seen: dict[str, list[int]] = {}
    expected_seq = 1
    for event in events:
        if not isinstance(event, Event) or event.seq != expected_seq:
            return False
        expected_seq += 1
        seen.setdefault(event.task, []).append(event.data["n"])
    return seen == {f"writer-{w}": list(range(each)) for w in range(WRITERS)}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the run -------------------------------------------------------------------------------------

def run(quick: bool, runs: int) -> dict[str, dict[str, list[Any]]]:
    sizes = ({"single": 300, "batched": 20_000, "scan": 20_000, "each": 50} if quick else
             {"single": 2_000, "batched": 200_000, "scan": 1_000_000, "each": 500})
    results: dict[str, dict[str, list[Any]]] = {"LMDB": {}, "SQLite": {}, "LMDB+view": {}}
    root = tempfile.mkdtemp(prefix="ghost-bench-eventlog-")

    def record(engine: str, figures: dict[str, Any]) -> None:
        for key, value in figures.items():
            results[engine].setdefault(key, []).append(value)

    try:
        for r in range(runs):
            for name in ("LMDB", "SQLite"):
                progress(f"run {r + 1}/{runs}: {name} single and batched appends")
                engine = open_engine(name, os.path.join(root, f"single-{name}-{r}"))
                record(name, {f"single_{k}": v
                              for k, v in single_appends(engine, sizes["single"]).items()})
                engine.close()
                engine = open_engine(name, os.path.join(root, f"batched-{name}-{r}"))
                record(name, {"batched_per_s":
                              batched_appends(engine, sizes["batched"])["per_s"]})
                engine.close()
                progress(f"run {r + 1}/{runs}: {name} with {WRITERS} writer processes")
                writers = concurrent_writers(name, os.path.join(root, f"writers-{name}-{r}"),
                                             sizes["each"])
                record(name, {f"writers_{k}": v for k, v in writers.items()})
            # What ghost itself does: the task view updated in every write transaction.
            engine = Lmdb(os.path.join(root, f"single-view-{r}"), views=VIEWS)
            record("LMDB+view", {f"single_{k}": v
                                 for k, v in single_appends(engine, sizes["single"]).items()})
            engine.close()
        for name in ("LMDB", "SQLite"):
            progress(f"{name}: loading {sizes['scan']:,} events")
            engine = open_engine(name, os.path.join(root, f"scan-{name}"))
            start = time.perf_counter()
            for batch in lifecycle_batches(sizes["scan"] // 4):
                engine.append(batch)
            record(name, {"load_s": time.perf_counter() - start})
            for r in range(runs):
                progress(f"run {r + 1}/{runs}: {name} scan and fold")
                record(name, scan_and_fold(engine))
            engine.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["sizes"] = {k: [v] for k, v in sizes.items()}
    return results


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def table(results: dict[str, dict[str, list[Any]]], runs: int) -> str:
    lm, sq, view, sizes = (results["LMDB"], results["SQLite"], results["LMDB+view"],
                           results["sizes"])
    med = statistics.median
    scan_n = f"{sizes['scan'][0]:,}"

    def row(label: str, key: str, unit: str, better: str, target: str = "",
            meets: bool | None = None, fmt: str = "{:,.0f}") -> str:
        a, b = med(lm[key]), med(sq[key])
        ratio = a / b if better == "higher" else b / a
        verdict = "" if meets is None else (" — met" if meets else " — **missed**")
        return (f"| {label} | {fmt.format(a)} {unit} | {fmt.format(b)} {unit} | {ratio:.2f}× "
                f"| {target}{verdict} |")

    lines = [
        f"| workload (median of {runs} runs) | LMDB (ghost Store) | SQLite WAL | "
        "LMDB advantage (>1: LMDB better) | target |",
        "|---|---|---|---|---|",
        row("durable append, 1 txn/event: p50", "single_p50_ms", "ms", "lower", "≤ 0.5 ms",
            med(lm["single_p50_ms"]) <= TARGETS["append_p50_ms"], "{:.3f}"),
        row("durable append, 1 txn/event: p99", "single_p99_ms", "ms", "lower", fmt="{:.3f}"),
        row("durable appends/s, 1 txn/event", "single_per_s", "/s", "higher"),
        row("batched appends/s, 1,000/txn", "batched_per_s", "/s", "higher", "≥ 250k/s",
            med(lm["batched_per_s"]) >= TARGETS["batched_per_s"]),
        row(f"load {scan_n} events, 1,000/txn (once)", "load_s", "s", "lower", fmt="{:.2f}"),
        row(f"scan + decode {scan_n} events", "scan_s", "s", "lower", fmt="{:.2f}"),
        row(f"full fold into the task view, {scan_n} events", "fold_s", "s", "lower",
            "≤ 2.5 s (1M)", med(lm["fold_s"]) <= TARGETS["fold_s"] if sizes["scan"][0]
            >= 1_000_000 else None, "{:.2f}"),
        row(f"{WRITERS} writer processes × {sizes['each'][0]}: events/s", "writers_per_s",
            "/s", "higher", "≥ 2.5k/s", med(lm["writers_per_s"]) >= TARGETS["writers_per_s"]),
        row(f"{WRITERS} writers: worst commit wait", "writers_max_wait_ms", "ms", "lower",
            fmt="{:.1f}"),
        row(f"{WRITERS} writers: p99 commit wait", "writers_p99_wait_ms", "ms", "lower",
            fmt="{:.1f}"),
        f"| {WRITERS} writers: nothing lost (all runs) | {all(lm['writers_intact'])} | "
        f"{all(sq['writers_intact'])} | | must be True |",
        f"| durable append with the task view (what ghost writes): p50 / p99 / rate | "
        f"{med(view['single_p50_ms']):.3f} / {med(view['single_p99_ms']):.3f} ms / "
        f"{med(view['single_per_s']):,.0f}/s | | | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run (20k events)")
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--writer", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.writer:
        name, path, writer, each = args.writer
        writer_main(name, path, int(writer), int(each))
        return
    results = run(args.quick, args.runs)
    print(f"Python {platform.python_version()}, py-lmdb {lmdb.__version__} (LMDB "
          f"{'.'.join(map(str, lmdb.version()))}), SQLite {sqlite3.sqlite_version}, msgpack "
          f"{'.'.join(map(str, msgpack.version))}, {os.cpu_count()} CPUs"
          f"{', quick run' if args.quick else ''}\n")
    print(table(results, args.runs))


if __name__ == "__main__":
    main()
