"""After the task ends, the pump copies what a background child that kept the task's output
open still writes: until EOF, while it keeps writing, within DRAIN_MAX in all."""

from __future__ import annotations

import os
import signal
import sys

from ghost.process.pump import DRAIN_IDLE, DRAIN_MAX

PY = sys.executable
# The task exits at once; its child writes for ~1.5 s (three times DRAIN_IDLE), never idle long.
# "early" is written before the fork, so the order in the log is fixed.
LATE = ("import os, sys, time\n"
        "print('early', flush=True)\n"
        "if os.fork() == 0:\n"
        "    for i in range(15):\n"
        "        print('late', i, flush=True); time.sleep(0.1)\n"
        "    os._exit(0)\n")
FOREVER = ("import os, time\n"
           "pid = os.fork()\n"
           "if pid == 0:\n"
           "    while True:\n"
           "        print('more', flush=True); time.sleep(0.05)\n"
           "open(os.environ['PIDFILE'], 'w').write(str(pid))\n")


def test_a_background_child_writing_after_the_task_ended_is_copied_to_eof(drive):
    assert DRAIN_IDLE * 2 < 15 * 0.1  # the child outlives a fixed 0.5 s window
    driven = drive([PY, "-c", LATE], {"timestamps": True})
    assert driven.status() == 0
    lines = driven.log().decode().splitlines()
    assert lines[0] == "early"
    assert lines[1:] == [f"late {i}" for i in range(15)]


def test_a_child_that_writes_forever_is_drained_for_a_bounded_time(drive, tmp_path):
    pidfile = str(tmp_path / "child.pid")
    driven = drive([PY, "-c", FOREVER], {"timestamps": True},
                   env={"PIDFILE": pidfile})
    try:
        assert driven.status(timeout=DRAIN_MAX + 30) == 0  # the pump returned: bounded
        assert driven.log().startswith(b"more\n")
    finally:
        with open(pidfile) as f:
            os.kill(int(f.read()), signal.SIGKILL)
