"""The task's stdio when ghost pumps it (--pty, --stdin, --timestamps, --log-max).

The monitor calls `prepare` before forking the task, `in_child` in the task (instead of stdin
from /dev/null and output straight into the log), `in_parent` after the fork, and `waiter_args`
for the pump's settings on the waiter's command line. Without any of those options `prepare`
returns None and nothing here runs: the fast path writes straight into the log, no copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ghost.process import inbox, pump

PIPE_SIZE = 1 << 20  # fewer wake-ups of the pump for a chatty task (Linux F_SETPIPE_SZ)
DEFAULT_COLS, DEFAULT_ROWS = 80, 24


@dataclass(slots=True)
class Plumbing:
    kind: str  # the task's input: "pty", "pipe" or "none"
    stdio: tuple[int, int, int] = (-1, -1, -1)  # the task's ends: stdin, stdout, stderr
    outputs: dict[int, int] = field(default_factory=dict)  # pump's ends: fd -> stream tag
    input_fd: int = -1
    listen_fd: int = -1
    inbox_path: str = ""
    child_only: list[int] = field(default_factory=list)


def pumped(io: dict[str, Any] | None) -> bool:
    io = io or {}
    return bool(io.get("pty") or io.get("stdin") or io.get("timestamps") or io.get("log_max"))


def prepare(spec: dict[str, Any]) -> Plumbing | None:
    """Create the PTY or pipes (and the inbox) for a pumped task; None for the fast path."""
    io = spec.get("io") or {}
    if not pumped(io):
        return None
    plumbing = _pty(io) if io.get("pty") else _pipes(io)
    if plumbing.kind != "none":
        plumbing.inbox_path = io["inbox"]
        plumbing.listen_fd = inbox.listen(plumbing.inbox_path)
    return plumbing


def _pty(io: dict[str, Any]) -> Plumbing:
    import fcntl
    import termios

    master, slave = os.openpty()
    cols, rows = int(io.get("cols") or DEFAULT_COLS), int(io.get("rows") or DEFAULT_ROWS)
    winsize = rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, winsize)
    # Input goes through its own fd: the pump polls it for POLLOUT, the master for POLLIN.
    return Plumbing("pty", (slave, slave, slave), {master: pump.PTY},
                    os.dup(master), child_only=[slave])


def _pipes(io: dict[str, Any]) -> Plumbing:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    for fd in (out_r, err_r):
        _grow(fd)
    stdin, input_fd, kind = -1, -1, "none"
    if io.get("stdin"):
        stdin, input_fd = os.pipe()
        kind = "pipe"
    return Plumbing(kind, (stdin, out_w, err_w), {out_r: pump.STDOUT, err_r: pump.STDERR},
                    input_fd, child_only=[fd for fd in (stdin, out_w, err_w) if fd >= 0])


def _grow(fd: int) -> None:
    import fcntl

    try:
        fcntl.fcntl(fd, 1031, PIPE_SIZE)  # F_SETPIPE_SZ
    except OSError:
        pass  # over /proc/sys/fs/pipe-max-size for this user: the default size still works


def in_child(plumbing: Plumbing) -> None:
    """In the forked task, before exec: its stdin, stdout and stderr (and, for a PTY, its
    controlling terminal in a new session)."""
    stdin, stdout, stderr = plumbing.stdio
    if plumbing.kind == "pty":
        import fcntl
        import termios

        os.setsid()  # a new session, led by the task: the PTY becomes its controlling terminal
        fcntl.ioctl(stdin, termios.TIOCSCTTY, 0)
    else:
        os.setpgid(0, 0)
    if stdin < 0:
        stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)


def in_parent(plumbing: Plumbing) -> None:
    """In the monitor after the fork: only the task holds its ends (so EOF and hang-up work)."""
    for fd in plumbing.child_only:
        os.close(fd)
    plumbing.child_only = []


def parent_fds(plumbing: Plumbing) -> list[int]:
    fds = [*plumbing.outputs, plumbing.input_fd, plumbing.listen_fd]
    return [fd for fd in fds if fd >= 0]


def close_all(plumbing: Plumbing) -> None:
    """The task could not be started: release everything, remove the inbox."""
    for fd in [*parent_fds(plumbing), *plumbing.child_only]:
        os.close(fd)
    plumbing.child_only = []
    plumbing.outputs = {}
    plumbing.input_fd = plumbing.listen_fd = -1
    if plumbing.inbox_path:
        try:
            os.unlink(plumbing.inbox_path)
        except FileNotFoundError:
            pass


def waiter_args(plumbing: Plumbing, log_path: str, io: dict[str, Any]) -> list[str]:
    """The pump's settings for the waiter's command line; its fds survive the exec."""
    for fd in parent_fds(plumbing):
        os.set_inheritable(fd, True)
    config = {"log": log_path, "max": int(io.get("log_max") or 0),
              "keep": int(io.get("log_keep", 3)), "kind": plumbing.kind,
              "out": ",".join(f"{fd}:{tag}" for fd, tag in plumbing.outputs.items()),
              "in": plumbing.input_fd, "listen": plumbing.listen_fd, "inbox": plumbing.inbox_path}
    return pump.encode(config)


def for_attempt(launch: Mapping[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """What a restart (ghost.process.restarts) adds to the next attempt's monitor spec, from the
    launch spec `complete` kept: the same stdio. Empty for a task ghost did not pump."""
    saved = launch.get("stdio")
    if not saved:
        return {}
    extra: dict[str, Any] = {"io": dict(saved["io"]), "io_fields": dict(saved["io_fields"])}
    if saved["io"].get("pty") and "TERM" not in env:
        extra["env"] = {**env, "TERM": "xterm-256color"}
    return extra


def to_launch(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the monitor spec a restart needs again (kept in the launch spec file)."""
    if not spec.get("io"):
        return {}
    return {"stdio": {"io": dict(spec["io"]), "io_fields": dict(spec["io_fields"])}}
