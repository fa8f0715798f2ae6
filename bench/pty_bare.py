#!/usr/bin/env python3
"""The kernel's own PTY ceiling, without ghost: a source written to a PTY slave, read from the
master by a plain loop (docs/benchmarks.md, pumped tasks: the table that bounds `--pty`).

    .venv/bin/python bench/pty_bare.py 'yes | head -c {size}' 20000000 cooked|raw READ block|poll

"cooked" is the terminal a ghost task gets (OPOST|ONLCR); "raw" clears OPOST (only to locate the
cost). Prints MB/s of the source's bytes and of the bytes read, and the mean bytes per read.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import time


def run(cmd: str, raw: bool, read_size: int, mode: str) -> tuple[int, float, int]:
    master, slave = os.openpty()
    if raw:
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: the slave is its controlling terminal
        os.setsid()
        os.dup2(slave, 1)
        os.execvp("sh", ["sh", "-c", cmd])
    os.close(slave)
    total = reads = 0
    poller = select.poll()
    if mode == "poll":
        os.set_blocking(master, False)
        poller.register(master, select.POLLIN)
    while True:
        try:
            if mode == "poll":
                poller.poll(-1)
            data = os.read(master, read_size)
        except BlockingIOError:
            continue
        except OSError:  # EIO: the terminal hung up
            break
        if not data:
            break
        total += len(data)
        reads += 1
    os.waitpid(pid, 0)
    os.close(master)
    return total, time.monotonic() - start, reads


def main() -> None:
    cmd, size, how, read_size, mode = sys.argv[1:6]
    total, seconds, reads = run(cmd.format(size=size), how == "raw", int(read_size), mode)
    print(f"{how:6} read={read_size:>8} {mode:5} in={int(size) / seconds / 1e6:7.1f} MB/s "
          f"out={total / seconds / 1e6:7.1f} MB/s bytes/read={total / max(reads, 1):7.0f}")


if __name__ == "__main__":
    main()
