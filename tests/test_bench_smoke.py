"""bench/eventlog.py must keep working: a quick run exits 0 and prints its table (no timings are
asserted; figures are for docs/benchmarks.md)."""

from __future__ import annotations

import os
import subprocess
import sys

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench",
                     "eventlog.py")


def test_the_event_log_benchmark_runs_and_prints_its_table():
    result = subprocess.run([sys.executable, BENCH, "--quick", "--runs", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| workload"))
    assert "LMDB (ghost Store)" in header and "SQLite WAL" in header and "target" in header
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    for label in ("durable append, 1 txn/event: p50", "batched appends/s, 1,000/txn",
                  "scan + decode 20,000 events",
                  "full fold into the task view, 20,000 events",
                  "8 writer processes × 50: events/s", "8 writers: worst commit wait"):
        assert label in rows, label
    # Both engines kept every event of every concurrent writer, in order.
    assert rows["8 writers: nothing lost (all runs)"].split("|")[2:4] == [" True ", " True "]
