"""`log -f` across a --log-max rotation wakes on the new file's own writes (inotify watched the
renamed file before): the one-second safety net is switched off here, so a follower that
only woke on it would not see the output written after a rotation before the deadline."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from support import ghost, run_json

CODE = ("import time\n"
        "for i in range(30):\n"
        "    print('line %04d' % i + 'x' * 90, flush=True); time.sleep(0.05)\n"
        "time.sleep(120)\n")  # still running: no end commit may wake the follower
# `ghost log -f` whose wake-ups come only from real changes (no 1 s safety net).
FOLLOWER = ("import sys\n"
            "from events import follow\n"
            "plain = follow.wakeups\n"
            "follow.wakeups = lambda paths, timeout_ms=0, stop=None: plain(paths, 600_000, stop)\n"
            "from ghost.cli.main import main\n"
            "main(['log', '-f', sys.argv[1]])\n")


def test_follow_wakes_on_writes_after_a_rotation(env):
    task = run_json("--log-max", "1K", "--log-keep", "10", sys.executable, "-c", CODE, env=env)
    proc = subprocess.Popen([sys.executable, "-c", FOLLOWER, task["id"]], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    got = b""
    last = b"line 0029" + b"x" * 90 + b"\n"
    try:
        deadline = time.monotonic() + 30  # far below the 600 s the follower waits otherwise
        while not got.endswith(last) and time.monotonic() < deadline:
            got += proc.stdout.read() or b""
            time.sleep(0.05)
        assert got.endswith(last), got[-200:]
    finally:
        ghost("kill", task["id"], env=env)
        proc.kill()
        proc.wait()
