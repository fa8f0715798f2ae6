"""Fault-injection seams for the reliability tests; inert unless a GHOST_TEST_* variable is set.

`crash_point(name)` kills the calling process with SIGKILL, exactly as `kill -9` would, when
GHOST_TEST_CRASH_AT names that point. It is placed at every step of `ghost run` and of the
monitor where a crash could leave something half-done, so the tests can prove that none does.
Cost when disabled: one dict lookup. Kept free of imports beyond `os` and `signal`: the monitor
imports it.
"""

from __future__ import annotations

import os
import signal

CRASH_ENV = "GHOST_TEST_CRASH_AT"

# Every seam placed in the code; the crash tests are parametrized over this tuple.
CRASH_POINTS = (
    "run:before-monitor-start",  # CLI: validated, nothing started yet
    "run:after-monitor-start",  # CLI: monitor started and given its spec, no report read yet
    "monitor:before-spawned",  # monitor: task forked (blocked before exec), nothing recorded
    "monitor:after-spawned",  # monitor: `spawned` durable, task not yet released to exec
    "monitor:after-go",  # monitor: task released to exec, start not yet reported
    "monitor:before-end-record",  # monitor: task reaped, its end not yet recorded
    "task:before-exec",  # the task itself, forked and recorded, killed before it may exec
)
# Seams of `ghost events` (tests/test_export_parallel.py): a worker dies before sending.
EXPORT_CRASH_POINTS = ("export:worker",)


def crash_point(name: str) -> None:
    """SIGKILL this process when the test harness asked to crash at `name`."""
    if os.environ.get(CRASH_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


FORK_FAIL_ENV = "GHOST_TEST_FAIL_FORK"
FORK_POINTS = ("run:fork-monitor", "monitor:fork-task")
EXPORT_FORK_POINTS = ("export:fork-worker",)  # `ghost events` cannot fork its workers


def fork_with_pipe(name: str) -> tuple[int, int, int]:
    """os.fork() behind the fork seam `name`, with a new pipe: (pid, read fd, write fd), both
    ends open in parent and child alike. If the fork fails, the pipe is closed again."""
    read_fd, write_fd = os.pipe()
    try:
        fork_point(name)
        return os.fork(), read_fd, write_fd
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        raise


def fork_point(name: str) -> None:
    """Fail like fork() does when the process limit is reached (EAGAIN), when the test harness
    asked for it at `name`: as root, RLIMIT_NPROC cannot produce the real failure."""
    if os.environ.get(FORK_FAIL_ENV) == name:
        raise BlockingIOError(11, "Resource temporarily unavailable")
