"""Tasks outlive the terminal that started them, and their monitors ignore hang-ups."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import signal
import time

from support import GHOST, ghost, pid_alive, run_json, status_json, wait_ended, wait_for

from events.store import Store
from events.types import SPAWNED, Event


def proc_stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        return f.read().rsplit(b")", 1)[1].decode().split()


def monitor_pid(data_dir: str, task_id: str) -> int:
    store = Store.open(os.path.join(data_dir, "store"), create=False)
    assert store is not None
    try:
        [spawned] = [e for e in store.task_events(task_id)
                     if isinstance(e, Event) and e.type == SPAWNED]
    finally:
        store.close()
    return int(spawned.data["monitor"]["pid"])


def read_until(fd: int, marker: bytes, timeout: float = 30.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} from the terminal; got {data!r}"
        if select.select([fd], [], [], left)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the terminal's other side is gone
                break
            if not chunk:
                break
            data += chunk
    return data


def test_task_survives_its_terminal_closing(data_dir, env):
    command = shlex.join([*GHOST, "run", "--json", "sleep", "60"])
    # The shell is the terminal's session leader and stays in the foreground after `ghost run`,
    # like an interactive terminal that is then closed.
    pid, master = pty.fork()
    if pid == 0:
        os.execvpe("sh", ["sh", "-c", f"{command}; echo READY; exec sleep 300"], env)
    try:
        output = read_until(master, b"READY")
        started = json.loads(output.split(b"\n", 1)[0])
        terminal_session = int(proc_stat(pid)[3])
        os.close(master)  # the terminal window closes: the kernel hangs up the session
        master = -1
        wait_for(lambda: os.waitpid(pid, os.WNOHANG)[0] == pid, 20,
                 message="the terminal's shell to die of the hang-up")
        assert pid_alive(started["pid"])
        state = proc_stat(started["pid"])
        assert int(state[3]) != terminal_session  # its own session...
        assert int(state[4]) == 0  # ...and no controlling terminal
        assert status_json(started["id"], env)["status"] == "running"
        assert pid_alive(monitor_pid(data_dir, started["id"]))
        result = ghost("stop", started["id"], env=env)
        assert result.returncode == 0, result.stderr
        assert status_json(started["id"], env)["signal"] == "SIGTERM"
    finally:
        if master >= 0:
            os.close(master)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def test_monitor_survives_hangup_and_interrupt(data_dir, env):
    task = run_json("sleep", "60", env=env)
    monitor = monitor_pid(data_dir, task["id"])
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGPIPE):
        os.kill(monitor, sig)
    os.kill(task["pid"], signal.SIGUSR1)
    # Only a living monitor records the exact signal; a dead one would leave `unknown`.
    ended = wait_ended(task["id"], env)
    assert (ended["status"], ended["signal"]) == ("killed", "SIGUSR1")
    wait_for(lambda: not pid_alive(monitor), message="the monitor to exit after recording")
