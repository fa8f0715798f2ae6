#!/usr/bin/env python3
"""The pump's cost: output throughput and memory of pumped tasks against the direct path.

    .venv/bin/python bench/pump.py [--quick] [--size MB] [--rounds N]

Throughput: `yes | head -c SIZE` run as a ghost task, plain (the task writes straight into the
log: no copy), with --timestamps (two pipes through the pump, indexed), --stdin (the same plus
an open stdin and the inbox) and --pty (a pseudo-terminal: the kernel's line discipline turns
each \\n into \\r\\n and is far slower than a pipe, so it runs SIZE/32; MB/s count the task's
bytes). MB/s = bytes / (end - spawn) from the task's own events, median over rounds,
interleaved.

Memory: PSS of the task's monitor (the waiter, or the pump) from /proc/PID/smaps_rollup while
its task is idle and while `yes` floods it. Runs in a throwaway GHOST_DATA_DIR; every task is
killed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

GHOST = [sys.executable, "-m", "ghost"]
MODES = {"direct": [], "timestamps": ["--timestamps"], "stdin": ["--stdin"], "pty": ["--pty"]}
PTY_SHARE = 32  # --pty runs SIZE/32: its throughput is bound by the kernel's tty layer


def ghost(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([*GHOST, *args], env=env, capture_output=True, timeout=600)
    if result.returncode not in (0,):
        raise SystemExit(f"ghost {' '.join(args)} failed: {result.stderr.decode()}")
    return result.stdout.decode()


def run(env: dict[str, str], *args: str) -> str:
    return str(json.loads(ghost(env, "run", "--json", *args).splitlines()[0])["id"])


def task_events(env: dict[str, str], task_id: str) -> list[dict]:
    return [e for e in map(json.loads, ghost(env, "events").splitlines())
            if e.get("task") == task_id]


def throughput(env: dict[str, str], mode: str, size: int) -> float:
    if mode == "pty":  # the kernel's terminal is far slower than a pipe: keep the run short
        size = max(1_000_000, size // PTY_SHARE)
    task = run(env, *MODES[mode], "sh", "-c", f"yes | head -c {size}")
    subprocess.run([*GHOST, "wait", "-q", task], env=env, timeout=600)
    events = task_events(env, task)
    spawned = next(e for e in events if e["type"] == "spawned")
    ended = next(e for e in events if e["type"] in ("exited", "killed"))
    seconds = (ended["end_ns"] - spawned["time_ns"]) / 1e9
    return size / seconds / 1e6


def bare_pty(size: int) -> float:
    """The kernel's own PTY speed: `yes | head -c SIZE` on a terminal read by a plain loop
    (no ghost), for comparison with the --pty row."""
    size = max(1_000_000, size // PTY_SHARE)
    master, slave = os.openpty()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.setsid()
        os.dup2(slave, 1)
        os.execvp("sh", ["sh", "-c", f"yes 2>/dev/null | head -c {size}"])
    os.close(slave)
    while True:
        try:
            if not os.read(master, 1 << 16):
                break
        except OSError:  # EIO: the terminal hung up
            break
    os.waitpid(pid, 0)
    os.close(master)
    return size / (time.monotonic() - start) / 1e6


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def memory(env: dict[str, str], mode: str, command: list[str]) -> int:
    task = run(env, *MODES[mode], *command)
    time.sleep(1.5)  # let the flood reach a steady state (or the idle task settle)
    spawned = next(e for e in task_events(env, task) if e["type"] == "spawned")
    try:
        return pss_kib(int(spawned["monitor"]["pid"]))
    finally:
        ghost(env, "kill", task)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke test: 64 MB, 1 round")
    p.add_argument("--size", type=int, default=None, help="MB per task (default 512)")
    p.add_argument("--rounds", type=int, default=None, help="rounds (default 5)")
    args = p.parse_args(argv)
    size = (args.size or (64 if args.quick else 512)) * 1_000_000
    rounds = args.rounds or (1 if args.quick else 5)
    tmp = tempfile.mkdtemp(prefix="ghost-bench-pump-")
    env = {**os.environ, "GHOST_DATA_DIR": os.path.join(tmp, "data")}
    try:
        samples: dict[str, list[float]] = {m: [] for m in [*MODES, "pty, bare loop"]}
        for _ in range(rounds):
            for mode in MODES:
                samples[mode].append(throughput(env, mode, size))
            samples["pty, bare loop"].append(bare_pty(size))
        direct = statistics.median(samples["direct"])
        print(f"Throughput of `yes | head -c {size // 1_000_000}M` ({rounds} rounds, median):")
        print("| mode | MB/s | min-max | vs direct |")
        print("| --- | ---: | ---: | ---: |")
        for mode, values in samples.items():
            med = statistics.median(values)
            print(f"| {mode} | {med:.0f} | {min(values):.0f}-{max(values):.0f} | "
                  f"{med / direct:.2f} |")
        print("\nMonitor PSS (KiB), idle `sleep` and flooded by `yes`:")
        print("| mode | idle | under `yes` |")
        print("| --- | ---: | ---: |")
        for mode in MODES:
            idle = memory(env, mode, ["sleep", "60"])
            busy = memory(env, mode, ["yes"])
            print(f"| {mode} | {idle} | {busy} |")
    finally:
        for line in ghost(env, "list", "--json", "-s", "running").splitlines()[:1]:
            for task in json.loads(line) if line.startswith("[") else []:
                os.kill(task["pid"], signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
