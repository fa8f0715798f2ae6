"""Running a real task through the real pump without the store: a forked driver does what the
monitor and waiter do (plumbing.prepare, fork, exec, Pump.run) and reports the wait status."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ghost.process import inbox, plumbing
from ghost.process.pump import LogWriter, Pump


@dataclass
class Driven:
    driver: int
    log_path: str
    inbox_path: str
    result_fd: int

    def status(self, timeout: float = 20.0) -> int:
        """The task's wait status once the pump returned (the driver is reaped)."""
        deadline = time.monotonic() + timeout
        data = b""
        os.set_blocking(self.result_fd, False)
        while not data.endswith(b"\n"):
            if time.monotonic() > deadline:
                os.kill(self.driver, 9)
                os.waitpid(self.driver, 0)
                raise AssertionError("the pump did not end in time")
            try:
                data += os.read(self.result_fd, 64)
            except BlockingIOError:
                time.sleep(0.01)
        os.close(self.result_fd)
        os.waitpid(self.driver, 0)
        return int(data)

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
    driven = Driven(driver, log_path, io["inbox"], result_r)
    if io.get("pty") or io.get("stdin"):
        # The inbox exists while the task runs; a task that ends at once (under load, before
        # this process looks) takes it away again, but then the driver has reported.
        wait_for(lambda: os.path.exists(driven.inbox_path) or _reported(result_r))
    return driven


def _reported(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0)[0])


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
