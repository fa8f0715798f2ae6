"""The copy loop of a pumped task (--pty, --stdin, --timestamps, --log-max), run by the waiter.

It copies the task's output (the PTY master, or its stdout and stderr pipes) into the log, keeps
the chunk index beside it (ghost.state.logindex reads it), rotates the log at --log-max, and
serves the inbox (ghost.process.inbox: send, --eof, resize) until the task ends. The waiter runs
for the whole life of the task, so this module imports nothing but `os`, `select` and the C
`_socket` (not `socket`, which drags in enum and selectors): the process stays ~3 MiB.

Order of writes: an index record is written *before* the bytes it describes, so a reader never
finds bytes in the log whose stream or time it cannot tell.
"""

from __future__ import annotations

import os
import select

from ghost.process import inbox

TYPE_CHECKING = False  # `typing` is not imported at run time: it would weigh on the waiter
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

READ_SIZE = 1 << 16
SPLICE_SIZE = 1 << 20  # a whole (grown) pipe per call: see ghost.process.plumbing.PIPE_SIZE
STDOUT, STDERR, PTY = 1, 2, 3  # stream tags in the index; 0 marks the start of a log piece
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr", PTY: "pty"}
TAG_SHIFT = 56  # index word 0 = logical offset | stream << 56
COALESCE_NS = 1_000_000  # same-stream chunks within 1 ms share one index record (ms timestamps)
DRAIN_IDLE = 0.5  # after the task ended: stop copying once its output was quiet this long
DRAIN_MAX = 5.0  # ... or after this long in all (a background child that writes forever)
FULL_ENV = "GHOST_TEST_LOG_FULL_AFTER"  # test seam: the log "disk" fills after N bytes
DRAIN_PAUSE_ENV = "GHOST_TEST_DRAIN_PAUSE"  # test seam: seconds from the end to the drain


def record(offset: int, time_ns: int, stream: int) -> bytes:
    return ((stream << TAG_SHIFT) | offset).to_bytes(8, "little") + time_ns.to_bytes(8, "little")


def piece_path(path: str, n: int) -> str:
    return path if n == 0 else f"{path}.{n}"


def index_path(log_path: str) -> str:
    """`<id>.log` -> `<id>.idx` (its pieces rotate with the log's: `<id>.idx.1` ...)."""
    return log_path[:-4] + ".idx" if log_path.endswith(".log") else log_path + ".idx"


APPEND = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
# The log itself is written at explicit offsets (pwrite, splice): splice refuses O_APPEND files.
LOG = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_new(path: str, flags: int = APPEND) -> int:
    return os.open(path, flags | os.O_TRUNC, 0o600)


class LogWriter:
    """The task's bytes into the log (rotated at `log_max`, `keep` old pieces), indexed."""

    def __init__(self, log_path: str, log_max: int = 0, keep: int = 3,
                 on_failure: Callable[[OSError], None] | None = None) -> None:
        self.path = log_path
        self.idx_path = index_path(log_path)
        # Opened by the pump, once the task is recorded; a later attempt (restart) appends.
        self.fd = os.open(log_path, LOG, 0o600)
        self.idx = os.open(self.idx_path, APPEND, 0o600)
        self.max = log_max
        self.keep = keep
        self.size = os.fstat(self.fd).st_size  # bytes in the current piece
        head = _first_record(self.idx_path) if os.fstat(self.idx).st_size >= 16 else b""
        start = int.from_bytes(head[:8], "little") & ((1 << TAG_SHIFT) - 1) if head else 0
        self.logical = start + self.size  # the task's output so far, over all pieces
        self.last_stream = -1
        self.last_ns = 0
        self.failed = False
        self.on_failure = on_failure
        full = os.environ.get(FULL_ENV)
        self.full_after = int(full) if full else -1
        if not head:
            self._mark(0)

    def _mark(self, now: int) -> None:
        """First record of every index piece: where this piece starts in the whole output."""
        os.write(self.idx, record(self.logical - self.size, now or _now(), 0))
        self.last_stream = -1

    def write(self, data: bytes, stream: int) -> None:
        view = memoryview(data)
        now = _now()
        while view:
            if self.max and self.size >= self.max:
                try:
                    self._rotate(now)
                except OSError as exc:  # cannot rename or create a piece: like a full disk
                    self._fail(exc)
                    return
            room = len(view) if not self.max else self.max - self.size
            part = view[:room]
            if stream != self.last_stream or now - self.last_ns >= COALESCE_NS:
                self._index(now, stream)
            written = self._write_all(part)
            self.logical += written
            self.size += written
            if written < len(part):  # the disk is full: the rest of this chunk is dropped
                return
            view = view[room:]

    def take(self, fd: int, stream: int) -> int:
        """Move what the pipe `fd` holds into the log with splice (no copy through Python):
        the byte count, 0 at the pipe's end, -1 when it is empty now. After a failed write it
        reads instead, so the pipe is drained whatever happens to the disk."""
        if self.failed or self.full_after >= 0:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                return -1
            self.write(data, stream)
            return len(data)
        now = _now()
        if self.max and self.size >= self.max:
            try:
                self._rotate(now)
            except OSError as exc:
                self._fail(exc)
                return self.take(fd, stream)
        room = SPLICE_SIZE if not self.max else min(SPLICE_SIZE, self.max - self.size)
        if stream != self.last_stream or now - self.last_ns >= COALESCE_NS:
            self._index(now, stream)  # before the bytes: a reader never sees them untagged
        try:
            moved = os.splice(fd, self.fd, room, offset_dst=self.size)
        except BlockingIOError:
            return -1
        except OSError as exc:  # e.g. ENOSPC: tell once, then drain by reading
            self._fail(exc)
            return self.take(fd, stream)
        self.logical += moved
        self.size += moved
        return moved

    def _index(self, now: int, stream: int) -> None:
        try:
            os.write(self.idx, record(self.logical, now, stream))
        except OSError as exc:
            self._fail(exc)
            return
        self.last_stream, self.last_ns = stream, now

    def _write_all(self, part: memoryview) -> int:
        done = 0
        try:
            while done < len(part):
                end = len(part)
                if self.full_after >= 0:  # the test seam: the disk is full after N bytes
                    end = min(end, self.full_after - self.logical)
                    if end <= done:
                        raise OSError(28, "No space left on device")
                done += os.pwrite(self.fd, part[done:end], self.size + done)
        except OSError as exc:
            self._fail(exc)
        return done

    def _fail(self, exc: OSError) -> None:
        """Tell once; then keep draining the task's output (it must never block on a pipe)."""
        if not self.failed:
            self.failed = True
            if self.on_failure is not None:
                self.on_failure(exc)

    def _rotate(self, now: int) -> None:
        """`.log` -> `.log.1` -> ... -> `.log.<keep>`; the oldest beyond `keep` is deleted."""
        os.close(self.fd)
        os.close(self.idx)
        self.fd = self.idx = -1  # until reopened: a write fails (EBADF), never lands elsewhere
        for path in (self.path, self.idx_path):
            try:
                os.unlink(piece_path(path, self.keep))
            except FileNotFoundError:
                pass
            for n in range(self.keep - 1, -1, -1):
                try:
                    os.rename(piece_path(path, n), piece_path(path, n + 1))
                except FileNotFoundError:
                    pass
            if self.keep == 0:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        self.fd = _open_new(self.path, LOG)
        self.idx = _open_new(self.idx_path)
        self.size = 0
        self._mark(now)

    def close(self) -> None:
        for fd in (self.fd, self.idx):
            if fd >= 0:
                os.close(fd)
        self.fd = self.idx = -1


def _first_record(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.pread(fd, 16, 0)
    finally:
        os.close(fd)


def _now() -> int:
    from time import time_ns  # a builtin module: no file is loaded

    return time_ns()


class Pump:
    """One task's loop: output -> LogWriter, inbox requests -> the task's input."""

    def __init__(self, pid: int, outputs: dict[int, int], writer: LogWriter,
                 input_fd: int = -1, input_kind: str = "none", listen_fd: int = -1,
                 inbox_path: str = "") -> None:
        self.pid = pid
        self.outputs = dict(outputs)  # fd -> stream tag
        self.writer = writer
        self.inbox = inbox.Server(listen_fd, inbox_path, input_fd, input_kind) \
            if listen_fd >= 0 else None
        self.poller = select.poll()
        for fd in self.outputs:
            os.set_blocking(fd, False)
            self.poller.register(fd, select.POLLIN)
        self.pidfd = -1
        try:
            self.pidfd = os.pidfd_open(pid)
            self.poller.register(self.pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pass  # an old kernel: the loop looks for the end every second instead

    def run(self) -> tuple[int, Any]:
        """Copy until the task has ended; returns its wait status and resource usage."""
        ended = None
        while ended is None:
            timeout = -1 if self.pidfd >= 0 else 1000
            if self.inbox is not None:
                self.inbox.arm(self.poller)
            for fd, events in _poll(self.poller, timeout):
                if fd in self.outputs:
                    self._copy(fd)
                elif fd == self.pidfd:
                    ended = self._reap()
                elif self.inbox is not None:
                    self.inbox.handle(fd, events, self.poller)
            if self.pidfd < 0:
                ended = self._reap()
        if self.inbox is not None:
            self.inbox.close(self.poller)
        if self.pidfd >= 0:
            self.poller.unregister(self.pidfd)
            os.close(self.pidfd)
        self._drain_after_exit()
        self.writer.close()
        return ended

    def _copy(self, fd: int) -> bool:
        """One read of `fd` into the log; False at its end (EOF, or EIO: the PTY hung up)."""
        stream = self.outputs[fd]
        data = b""
        try:
            if stream != PTY:  # a pipe: spliced straight into the log
                moved = self.writer.take(fd, stream)
                if moved:
                    return True  # bytes moved, or none there now (-1)
            else:
                data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return True
        except OSError:
            data = b""
        if not data:
            self.poller.unregister(fd)
            del self.outputs[fd]
            os.close(fd)
            return False
        self.writer.write(data, stream)
        return True

    def _reap(self) -> tuple[int, Any] | None:
        while True:
            try:
                pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            except InterruptedError:
                continue
            except ChildProcessError:
                return (0, None)
            return (status, rusage) if pid else None

    def _drain_after_exit(self) -> None:
        """Output the task wrote just before it ended is still in the pipe/PTY: copy it until
        EOF. A background child that inherited the task's output may keep it open: copying
        goes on while it writes, and stops after DRAIN_IDLE without a byte or DRAIN_MAX in
        all (so a child that writes forever cannot keep the task from being recorded ended)."""
        from time import monotonic, sleep

        pause = os.environ.get(DRAIN_PAUSE_ENV)
        if pause:  # widens the window in which a reader sees the end before the last output
            sleep(float(pause))
        give_up = monotonic() + DRAIN_MAX
        while self.outputs:
            left = min(DRAIN_IDLE, give_up - monotonic())
            if left <= 0:
                break
            ready = _poll(self.poller, int(left * 1000))
            if not ready:
                break  # idle for DRAIN_IDLE (or out of time)
            for fd, _ in ready:
                if fd in self.outputs:
                    self._copy(fd)
        for fd in list(self.outputs):
            os.close(fd)
        self.outputs.clear()


def _poll(poller: select.poll, timeout: int) -> list[tuple[int, int]]:
    try:
        return poller.poll(timeout)
    except InterruptedError:
        return []


# -- the waiter's entry point --------------------------------------------------------------

def encode(config: dict[str, Any]) -> list[str]:
    """The pump's settings as `key=value` arguments for the waiter's command line."""
    return [f"{key}={value}" for key, value in config.items()]


def decode(args: list[str]) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in args)


def report_failure(spec: dict[str, Any]) -> Callable[[OSError], None]:
    """The LogWriter's on_failure: one `log_write_failed` event (the store's modules are loaded
    only now, on the rare path)."""

    def on_failure(exc: OSError) -> None:
        from events import types as ev
        from events.store import StoreError
        from ghost.actor import actor
        from ghost.process.record import append

        event = ev.make(ev.LOG_WRITE_FAILED, spec["task"], error=exc.strerror or str(exc),
                        errno=exc.errno or 0, actor=actor("monitor"))
        try:
            append(spec, event, attempts=3)
        except StoreError:
            pass  # the store's disk is full too: the pump must go on draining regardless

    return on_failure


def pump_task(spec: dict[str, Any], pid: int, args: list[str]) -> tuple[int, Any]:
    """Run the pump for task `pid` with the settings from `encode`; its (status, rusage)."""
    import _signal  # type: ignore[import-not-found]  # the C module: `signal` imports enum

    # A log beyond RLIMIT_FSIZE is a failed write (EFBIG) like a full disk, not our death.
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_IGN)
    cfg = decode(args)
    outputs: dict[int, int] = {}
    for item in cfg.get("out", "").split(","):
        if item:
            fd, _, tag = item.partition(":")
            outputs[int(fd)] = int(tag)
    writer = LogWriter(cfg["log"], int(cfg.get("max", 0)), int(cfg.get("keep", 3)),
                       report_failure(spec))
    pump = Pump(pid, outputs, writer, int(cfg.get("in", -1)), cfg.get("kind", "none"),
                int(cfg.get("listen", -1)), cfg.get("inbox", ""))
    return pump.run()
