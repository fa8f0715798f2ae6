"""Follow latency: from a task's write to the line coming out of `ghost log -f`, vs `tail -f`.

A task started with `ghost run` (in a throwaway GHOST_DATA_DIR) writes one line every 20 ms
carrying its write time (time.time_ns(), comparable across processes). `ghost log -f ID` and
`tail -f LOG` follow the same log file at the same time; this process reads both followers'
stdout and takes, per line, the time it arrived here minus the time it was written. Then the
task goes quiet and the followers' idle CPU is read from /proc/PID/stat (utime+stime) over the
idle window. Finally the task ends and the time `ghost log -f` takes to exit by itself is taken.

    .venv/bin/python bench/follow.py            # 500 lines, 10 s idle
    .venv/bin/python bench/follow.py --quick    # 50 lines, 2 s idle (smoke test)

Prints a Markdown table with ratios to tail -f. Everything it starts is killed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers.tools import clean_env  # noqa: E402  (no PYTHONDONTWRITEBYTECODE)

GHOST = [sys.executable, "-m", "ghost"]
TICK = os.sysconf("SC_CLK_TCK")
SETTLE = 3.0

# The task: print a ready line, wait for "go" on the FIFO, write N timestamped lines on a
# fixed 20 ms grid, then block on the FIFO (no CPU) until the bench closes it.
TASK = r"""
import os, sys, time
fifo, count, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
print("ready", flush=True)
with open(fifo, "rb") as ctl:
    ctl.readline()
    start = time.monotonic()
    for i in range(count):
        delay = start + i * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sys.stdout.write(f"{time.time_ns()} {i}\n")
        sys.stdout.flush()
    ctl.read()
"""


@dataclass
class Follower:
    name: str
    proc: subprocess.Popen
    buffer: bytes = b""
    delays_ms: list[float] = field(default_factory=list)
    seen: list[int] = field(default_factory=list)
    ready: bool = False

    def feed(self, data: bytes, now_ns: int) -> None:
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line == b"ready":
                self.ready = True
                continue
            stamp, _, number = line.partition(b" ")
            self.delays_ms.append((now_ns - int(stamp)) / 1e6)
            self.seen.append(int(number))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def pump(followers: list[Follower], until, timeout: float) -> None:
    """Read the followers' stdout until `until()` is true; fail after `timeout` seconds."""
    sel = selectors.DefaultSelector()
    for f in followers:
        sel.register(f.proc.stdout, selectors.EVENT_READ, f)
    deadline = time.monotonic() + timeout
    try:
        while not until():
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemExit("bench/follow.py: timed out waiting for the followers")
            for key, _ in sel.select(min(left, 0.5)):
                data = os.read(key.fileobj.fileno(), 1 << 16)
                now = time.time_ns()
                if data:
                    key.data.feed(data, now)
                else:
                    sel.unregister(key.fileobj)
    finally:
        sel.close()


def run(lines: int, idle: float, interval: float) -> None:
    base = tempfile.mkdtemp(prefix="ghost-bench-follow-")
    env = clean_env(GHOST_DATA_DIR=os.path.join(base, "data"))
    fifo = os.path.join(base, "control")
    os.mkfifo(fifo, 0o600)
    followers: list[Follower] = []
    task_id = ""
    ctl = None
    try:
        started = subprocess.run(
            [*GHOST, "run", "--json", sys.executable, "-c", TASK, fifo, str(lines),
             str(interval)], env=env, capture_output=True, check=True)
        task = json.loads(started.stdout.decode().splitlines()[0])
        task_id = task["id"]
        for name, argv in (("ghost log -f", [*GHOST, "log", "-f", task_id]),
                           ("tail -f", ["tail", "-n", "+1", "-f", task["log_path"]])):
            proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
            followers.append(Follower(name, proc))
        pump(followers, lambda: all(f.ready for f in followers), 30)
        time.sleep(0.3)  # let both followers settle into their wait after the ready line
        ctl = open(fifo, "wb")  # noqa: SIM115 - closed below, ends the task
        ctl.write(b"go\n")
        ctl.flush()
        pump(followers, lambda: all(len(f.seen) >= lines for f in followers),
             lines * interval + 30)

        # The measurement window itself (nothing is written meanwhile), read twice: over the
        # whole window, and after its first SETTLE seconds, once ghost's watcher has cooled
        # down from its 1 ms step (events.follow.HOT_SECONDS) to its idle step.
        before = {f.name: cpu_seconds(f.proc.pid) for f in followers}
        t0 = time.monotonic()
        time.sleep(min(SETTLE, idle / 2))
        t1 = time.monotonic()
        middle = {f.name: cpu_seconds(f.proc.pid) for f in followers}
        time.sleep(max(0.0, idle - (t1 - t0)))
        t2 = time.monotonic()
        after = {f.name: cpu_seconds(f.proc.pid) for f in followers}
        idle_pct = {f.name: (100 * (after[f.name] - before[f.name]) / (t2 - t0),
                             100 * (after[f.name] - middle[f.name]) / (t2 - t1))
                    for f in followers}

        ctl.close()  # the task ends now; `ghost log -f` must notice from the event log
        ctl = None
        ghost_follower = followers[0]
        ghost_follower.proc.wait(timeout=30)
        exited_ns = time.time_ns()
        status = json.loads(subprocess.run([*GHOST, "status", "--json", task_id], env=env,
                                           capture_output=True, check=True).stdout)
        from datetime import datetime

        finished = datetime.fromisoformat(status["finished_at"].replace("Z", "+00:00"))
        end_ms = (exited_ns - finished.timestamp() * 1e9) / 1e6
        report(followers, idle_pct, lines, idle, end_ms, ghost_follower.proc.returncode)
    finally:
        if ctl is not None:
            ctl.close()
        for f in followers:
            if f.proc.poll() is None:
                os.killpg(f.proc.pid, signal.SIGKILL)
            f.proc.wait()
        if task_id:
            subprocess.run([*GHOST, "kill", task_id], env=env, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def report(followers: list[Follower], idle_pct: dict[str, tuple[float, float]], lines: int,
           idle: float,
           end_ms: float, exit_code: int | None) -> None:
    rows = []
    for f in followers:
        intact = f.seen == list(range(lines))
        rows.append((f.name, len(f.delays_ms), percentile(f.delays_ms, 0.5),
                     percentile(f.delays_ms, 0.95), max(f.delays_ms), *idle_pct[f.name],
                     intact))
    settle = min(SETTLE, idle / 2)
    print(f"Follow latency, write -> follower stdout, {lines} lines every 20 ms; idle CPU "
          f"(percent of one core) over the {idle:g} s after the last line, and over the same "
          f"window without its first {settle:g} s\n")
    print(f"| follower | lines | p50 ms | p95 ms | max ms | idle CPU % ({idle:g} s) | "
          f"idle CPU % (after {settle:g} s) | all lines, in order |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, count, p50, p95, worst, cpu, steady, intact in rows:
        print(f"| {name} | {count} | {p50:.2f} | {p95:.2f} | {worst:.2f} | {cpu:.2f} | "
              f"{steady:.2f} | {'yes' if intact else 'NO'} |")
    g, t = rows[0], rows[1]

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.1f}x" if b > 0 else "n/a"

    print(f"| ratio ghost / tail | | {ratio(g[2], t[2])} | {ratio(g[3], t[3])} | "
          f"{ratio(g[4], t[4])} | {ratio(g[5], t[5])} | {ratio(g[6], t[6])} | |")
    print(f"\n`ghost log -f` exited by itself {end_ms:.0f} ms after the task's recorded end "
          f"(exit code {exit_code}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 lines, 2 s idle")
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    lines, idle = (50, 2.0) if args.quick else (args.lines, args.idle)
    run(lines, idle, 0.020)


if __name__ == "__main__":
    main()
