"""Follow latency: how long a printed line takes to come out of a follower's stdout.

The payload (`EMITTER`) prints `tick <seq> <time_ns>` every 20 ms, flushed. A follower runs with
its stdout on a pipe that a thread reads with os.read; each line's delay is the wall clock when
the read returned minus the wall clock written in the line. Lines written in the first second
(start-up, history replay) are dropped; gaps in `seq` count as lost lines.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from peers.sysproc import cpu_ticks, descendants

EMITTER = """\
import sys, time
interval = float(sys.argv[1])
seq = 0
while True:
    seq += 1
    sys.stdout.write(f"tick {seq} {time.time_ns()}\\n")
    sys.stdout.flush()
    time.sleep(interval)
"""
WARMUP_NS = 1_000_000_000


@dataclass
class Follower:
    """One follower process and the lines it delivered."""

    label: str
    argv: list[str]
    env: Mapping[str, str]
    proc: subprocess.Popen[bytes] | None = None
    delays_ms: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    started_ns: int = 0
    error: str = ""
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.started_ns = time.time_ns()
        self.proc = subprocess.Popen(self.argv, env=dict(self.env), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        pending = b""
        while chunk := os.read(fd, 65536):
            now = time.time_ns()
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line, now)

    def _line(self, line: bytes, now: int) -> None:
        parts = line.split()
        # Tools may prefix lines (pm2 without --raw, supervisor never does): find the tick.
        if b"tick" not in parts:
            return
        i = parts.index(b"tick")
        try:
            seq, sent = int(parts[i + 1]), int(parts[i + 2])
        except (IndexError, ValueError):
            return
        if sent < self.started_ns + WARMUP_NS:
            return
        self.seqs.append(seq)
        self.delays_ms.append((now - sent) / 1e6)

    def pids(self) -> list[int]:
        if self.proc is None:
            return []
        return [self.proc.pid, *(p.pid for p in descendants(self.proc.pid))]

    def cpu_ticks(self) -> int:
        return sum(cpu_ticks(pid) or 0 for pid in self.pids())

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for pid in reversed(self.pids()):  # the follower's own helpers first, then it
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        elif not self.delays_ms:
            assert self.proc.stderr is not None
            self.error = self.proc.stderr.read().decode(errors="replace").strip()[:300]
            self.error = self.error or f"exited {self.proc.returncode} before any line"
        if self._thread is not None:
            self._thread.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def lost(self) -> int:
        if not self.seqs:
            return 0
        return max(self.seqs) - min(self.seqs) + 1 - len(set(self.seqs))


def idle_cpu_percent(followers: Sequence[Follower], seconds: float) -> dict[str, float]:
    """CPU used by each (idle) follower over `seconds`, in % of one core."""
    hz = os.sysconf("SC_CLK_TCK")
    before = {f.label: f.cpu_ticks() for f in followers}
    t0 = time.monotonic()
    time.sleep(seconds)  # a measurement window, not a wait for a condition
    elapsed = time.monotonic() - t0
    return {f.label: 100.0 * (f.cpu_ticks() - before[f.label]) / hz / elapsed
            for f in followers}
