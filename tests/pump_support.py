"""Running a real task through the real pump without the store: a forked driver does what the
monitor and waiter do (plumbing.prepare, fork, exec, Pump.run) and reports the task's pid, then
its wait status. The `drive` fixture (conftest) kills what a failed test left running."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from support import wait_for

from ghost.process import identity, inbox, plumbing
from ghost.process.pump import LogWriter, Pump


@dataclass
class Driven:
    driver: int
    task: int  # leads its own process group (pty: its own session)
    log_path: str
    inbox_path: str
    result_fd: int
    reaped: bool = False

    def status(self, timeout: float = 20.0) -> int:
        """The task's wait status once the pump returned (the driver is reaped)."""
        line = _read_line(self.result_fd, timeout)
        if line is None:
            self.close()
            raise AssertionError("the pump did not end in time")
        os.close(self.result_fd)
        os.waitpid(self.driver, 0)
        self.reaped = True
        return int(line)

    def close(self) -> None:
        """Kill the task's group and the driver if they still run. The driver is stopped first:
        a task that is still its child (alive or a zombie) then keeps its pid, so the signal
        cannot reach a process that reused it."""
        if self.reaped:
            return
        self.reaped = True
        os.kill(self.driver, signal.SIGSTOP)
        stat = identity.read_stat(self.task)
        if stat is not None and stat.ppid == self.driver:
            try:
                os.killpg(self.task, signal.SIGKILL)
            except ProcessLookupError:
                pass  # a zombie that led no group members any more
        os.kill(self.driver, signal.SIGKILL)
        os.waitpid(self.driver, 0)
        os.close(self.result_fd)

    def log(self) -> bytes:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""  # the pump has not opened it yet

    def request(self, op: bytes, payload: bytes = b"") -> str:
        sock = inbox.connect(self.inbox_path)
        try:
            return inbox.request(sock, op, payload)
        finally:
            sock.close()


def start(tmp: str, command: Sequence[str], io: dict[str, Any],
          env: dict[str, str] | None = None) -> Driven:
    log_path = os.path.join(tmp, "task.log")
    io = {**io, "inbox": os.path.join(tmp, "task.sock")}
    result_r, result_w = os.pipe()
    driver = os.fork()
    if driver == 0:  # pragma: no cover - runs in the forked driver
        code = 1
        try:
            os.close(result_r)
            pl = plumbing.prepare({"io": io})
            assert pl is not None
            task = os.fork()
            if task == 0:
                plumbing.in_child(pl)
                os.execvpe(command[0], list(command), {**os.environ, **(env or {})})
            os.write(result_w, f"{task}\n".encode())
            plumbing.in_parent(pl)
            writer = LogWriter(log_path, int(io.get("log_max") or 0),
                               int(io.get("log_keep", 3)))
            status, _ = Pump(task, pl.outputs, writer, pl.input_fd, pl.kind, pl.listen_fd,
                             pl.inbox_path).run()
            os.write(result_w, f"{status}\n".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(result_w)
    task = _read_line(result_r, 10.0)
    if task is None:  # the driver failed before it forked the task (or hangs)
        os.kill(driver, signal.SIGKILL)
        os.waitpid(driver, 0)
        os.close(result_r)
        raise AssertionError("the driver did not start the task")
    driven = Driven(driver, int(task), log_path, io["inbox"], result_r)
    if io.get("pty") or io.get("stdin"):
        # The inbox exists while the task runs; a task that ends at once (under load, before
        # this process looks) takes it away again, but then the driver has reported.
        try:
            wait_for(lambda: os.path.exists(driven.inbox_path) or _reported(result_r))
        except AssertionError:
            driven.close()
            raise
    return driven


def _read_line(fd: int, timeout: float) -> bytes | None:
    """One line from the driver's pipe, read a byte at a time so that the status line that
    follows the pid stays in the pipe; None at EOF or when the deadline passes."""
    import select

    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        byte = os.read(fd, 1)
        if not byte:
            return None
        data += byte
    return data


def _reported(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])
