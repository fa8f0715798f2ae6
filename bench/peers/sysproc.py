"""Process bookkeeping for the comparison: own every process we cause, time CLI calls, read memory.

The benchmark makes itself a child subreaper, so every daemon, monitor or job that a tool's CLI
detaches is re-parented to us instead of init. "Everything we started" is then simply our
descendants: that is what memory figures are summed over and what the final clean-up kills,
by pid, and nothing else on the machine.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    state: str
    cmdline: str
    ticks: int  # utime + stime, in clock ticks


def read_proc(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    rest = raw[raw.rindex(b")") + 2:].split()
    if not cmd:  # kernel threads and zombies have no cmdline: show the comm
        cmd = raw[raw.index(b"(") + 1:raw.rindex(b")")].decode(errors="replace")
    return Proc(pid, int(rest[1]), int(rest[2]), rest[0].decode(), cmd,
                int(rest[11]) + int(rest[12]))


def descendants(root: int | None = None) -> list[Proc]:
    """Every live process below `root` (default: us), found by walking ppids in /proc."""
    root = os.getpid() if root is None else root
    table: dict[int, list[Proc]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = read_proc(int(name))
            if p is not None:
                table.setdefault(p.ppid, []).append(p)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in table.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def children() -> list[int]:
    """Our direct children (including orphans re-parented to us), from /proc/self/task/*."""
    pids: list[int] = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as f:
                pids.extend(int(x) for x in f.read().split())
        except FileNotFoundError:
            continue
    return pids


def reap(keep: Iterable[int] = ()) -> int:
    """Collect zombies re-parented to us (never the Popen children still in use: `keep`)."""
    kept = set(keep)
    reaped = 0
    for pid in children():
        if pid in kept:
            continue
        p = read_proc(pid)
        if p is not None and p.state == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
                reaped += 1
            except ChildProcessError:
                pass
    return reaped


def gone(pid: int) -> bool:
    p = read_proc(pid)
    return p is None or p.state in ("Z", "X")


def wait_gone(pids: Sequence[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not all(gone(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        reap()
        time.sleep(0.01)
    return True


def kill_descendants(grace: float = 3.0) -> list[str]:
    """SIGTERM everything we started (by pid), SIGKILL what is left after `grace`; reap all."""
    me = os.getpid()
    victims = [p for p in descendants() if p.state != "Z"]
    for p in victims:
        with _no_such_process():
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(not gone(p.pid) for p in victims):
        reap()
        time.sleep(0.02)
    stubborn = [p for p in descendants() if p.state != "Z"]
    for p in stubborn:
        with _no_such_process():
            os.kill(p.pid, signal.SIGKILL)
    wait_gone([p.pid for p in stubborn], 5.0)
    reap()
    assert all(p.pid != me for p in victims)
    return [f"{p.pid} {p.cmdline[:60]}" for p in stubborn]


class _no_such_process:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_: object) -> bool:
        return kind is ProcessLookupError


@dataclass(frozen=True, slots=True)
class Timed:
    ms: float
    code: int
    out: str
    err: str


def timed(argv: Sequence[str], env: Mapping[str, str], out_path: str,
          before: object = None) -> Timed:
    """Run one CLI call from outside: clock before Popen, after a *blocking* wait().

    Output goes to a file, never a pipe: a daemon the call forks would otherwise hold the pipe
    open and turn "until it returns" into "until the daemon exits". (`Popen.wait(timeout=)`
    would quantise the figures to its poll steps, so there is no timeout here.)
    `before`, when given, is called inside the timed window (e.g. writing a config file).
    """
    with open(out_path, "wb") as out, open(out_path + ".err", "wb") as err:
        t0 = time.perf_counter_ns()
        if callable(before):
            before()
        proc = subprocess.Popen(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err)
        code = proc.wait()
        t1 = time.perf_counter_ns()
    with open(out_path, "rb") as f:
        text = f.read().decode(errors="replace")
    with open(out_path + ".err", "rb") as f:
        etext = f.read().decode(errors="replace")
    return Timed((t1 - t0) / 1e6, code, text, etext)


def run(argv: Sequence[str], env: Mapping[str, str], timeout: float = 600,
        ok: Sequence[int] = (0,)) -> str:
    """An untimed helper call; its stdout (raises with stderr when its exit code is not `ok`)."""
    done = subprocess.run(list(argv), env=dict(env), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv)[:120]} exited {done.returncode}: "
                           f"{done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout.decode(errors="replace")


def memory_kib(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in KiB from /proc/PID/smaps_rollup, or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as f:
            lines = f.read().splitlines()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = {ln.split(":")[0]: int(ln.split()[1]) for ln in lines[1:] if ln.endswith("kB")}
    return fields.get("Rss", 0), fields.get("Pss", 0)


def smaps_breakdown(pid: int, top: int = 8) -> list[dict[str, object]]:
    """Where one process's memory is: PSS/RSS/private-dirty per mapping, largest PSS first."""
    rows: dict[str, dict[str, int]] = {}
    current = ""
    try:
        with open(f"/proc/{pid}/smaps", encoding="utf-8", errors="replace") as f:
            for line in f:
                head = line.split()
                if not head:
                    continue
                if "-" in head[0] and not head[0].endswith(":"):
                    current = head[5] if len(head) > 5 else "[anon]"
                    current = current.rsplit("/", 1)[-1] if "/" in current else current
                    rows.setdefault(current, {"Rss": 0, "Pss": 0, "Private_Dirty": 0})
                elif head[0].rstrip(":") in ("Rss", "Pss", "Private_Dirty"):
                    rows[current][head[0].rstrip(":")] += int(head[1])
    except (FileNotFoundError, ProcessLookupError):
        return []
    ordered = sorted(rows.items(), key=lambda kv: -kv[1]["Pss"])[:top]
    return [{"mapping": name, "pss_kib": v["Pss"], "rss_kib": v["Rss"],
             "private_dirty_kib": v["Private_Dirty"]} for name, v in ordered]


def cpu_ticks(pid: int) -> int | None:
    p = read_proc(pid)
    return None if p is None else p.ticks
