"""Handing a task to a new monitor process and reading back its one-line report.

The CLI forks the monitor (no second interpreter on the critical path of `ghost run`); a
threaded caller (`ghost mcp`, `ghost serve`) cannot fork safely and starts
`python -I -m ghost.process.monitor` with posix_spawn instead. Either way the monitor detaches
into its own session and reports `ok PID STARTED_NS` or `error CODE MESSAGE` on a pipe.
"""

from __future__ import annotations

import os
import select
import sys
from typing import Any

from ghost.errors import IO, GhostError
from ghost.faults import crash_point

MONITOR_REPORT_TIMEOUT = 30.0


MIN_FREE = 64 * 1024  # less free space than this and LMDB cannot even create its files


class MonitorNotStarted(GhostError):
    """No monitor process could be created (e.g. EAGAIN at the process limit): nothing ran."""


def monitor_died(store_dir: str) -> GhostError:
    """What to say when the monitor died without a report (nothing it started ran unrecorded).

    LMDB writes its lock file through mmap, so on a full file system a fresh store kills the
    monitor with SIGBUS instead of failing a write: say so, with the exit code of a full disk.
    """
    message = "the task monitor died before it reported the start"
    try:
        fs = os.statvfs(store_dir)
    except OSError:
        return GhostError(message)
    if fs.f_bavail * fs.f_frsize < MIN_FREE:
        return GhostError(f"{message}: no space left on device for the event store in "
                          f"{store_dir}", IO)
    return GhostError(message)


def launch(spec: dict[str, Any]) -> dict[str, Any]:
    """Start a monitor for `spec` and return its parsed report (see `parse_report`)."""
    return _fork_monitor(spec) if _single_threaded() else _launch_monitor(spec)


def _single_threaded() -> bool:
    """fork() without exec is only safe when no other thread may hold a lock, and when this
    process has no store open (the forked monitor opens its own)."""
    import threading

    from events.store import open_in_process

    return threading.active_count() == 1 and hasattr(os, "fork") and not open_in_process()


def _fork_monitor(spec: dict[str, Any]) -> dict[str, Any]:
    """The fast path for the CLI: the monitor is a fork of this process, no new interpreter."""
    from ghost.process import monitor

    try:
        pid, read_fd = monitor.fork(spec)
    except OSError as exc:  # e.g. EAGAIN at the process limit: nothing started
        raise MonitorNotStarted(f"cannot start the task monitor: {exc.strerror}") from None
    return _await_report(pid, read_fd, spec)


def _await_report(intermediate: int, read_fd: int, spec: dict[str, Any]) -> dict[str, Any]:
    """Reap the short-lived intermediate process, then read the monitor's one-line report."""
    try:
        os.waitpid(intermediate, 0)  # it exits as soon as the monitor is forked
        crash_point("run:after-monitor-start")
        line = _read_line(read_fd, MONITOR_REPORT_TIMEOUT)
    finally:
        os.close(read_fd)
    if not line:
        raise monitor_died(spec["store"])
    return parse_report(line)


def parse_report(line: bytes) -> dict[str, Any]:
    """The monitor's one-line report (see ghost.process.monitor._report)."""
    word, _, rest = line.decode(errors="replace").partition(" ")
    pid, _, started = rest.partition(" ")
    if word == "ok" and pid.isdigit():
        return {"ok": True, "pid": int(pid), "started_ns": int(started or 0)}
    if word == "queued":  # run --after (ghost.process.supervise.wait_queue)
        return {"ok": True, "queued": True, "pid": 0, "started_ns": 0}
    if word == "exists" and rest:  # run --key named a task that exists
        return {"ok": False, "exists": rest.strip()}
    code, _, message = rest.partition(" ")
    if word == "error" and code.isdigit():
        return {"ok": False, "exit_code": int(code), "error": message}
    raise GhostError("the task monitor died before it reported the start")


def _launch_monitor(spec: dict[str, Any]) -> dict[str, Any]:
    """Start `python -I -m ghost.process.monitor` in a new session and read its one-line report."""
    spec_r, spec_w = os.pipe()
    out_r, out_w = os.pipe()
    file_actions = [(os.POSIX_SPAWN_DUP2, spec_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                    (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
    try:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-I", "-m", "ghost.process.monitor"],
                             _monitor_env(), file_actions=file_actions, setsid=True)
    except OSError as exc:  # e.g. EAGAIN at the process limit: nothing started
        os.close(spec_w)
        os.close(out_r)
        raise MonitorNotStarted(f"cannot start the task monitor: {exc.strerror}") from exc
    finally:
        os.close(spec_r)
        os.close(out_w)
    import json

    try:
        with os.fdopen(spec_w, "wb") as f:
            f.write(json.dumps(spec).encode())
    except OSError:
        pass  # the monitor died at once: its missing report says so, and it is still reaped
    return _await_report(pid, out_r, spec)


def _monitor_env() -> dict[str, str]:
    """The monitor runs from the installed ghost, never from modules in the caller's cwd."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    return env


def _read_line(fd: int, timeout: float) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise GhostError(f"the task monitor did not report within {timeout:.0f} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.strip()
