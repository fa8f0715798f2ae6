"""`ghost attach` in a real terminal driven by tmux: the task's screen, keystrokes, the window
size, Ctrl-] to detach, the terminal restored (also on SIGTERM and SIGHUP), refusals."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid

import pytest
from support import ghost, run_json, status_json, text, wait_for

from ghost.process.identity import read_stat
from ghost.process.pump import DRAIN_PAUSE_ENV

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
PY = sys.executable


class Tmux:
    def __init__(self, env: dict[str, str], cols: int = 100, rows: int = 30) -> None:
        self.socket = f"ghost-test-{uuid.uuid4().hex[:8]}"
        self.env = {**env, "TERM": "xterm-256color"}
        self.tmux("new-session", "-d", "-s", "t", "-x", str(cols), "-y", str(rows),
                  "bash --norc --noprofile")

    def tmux(self, *args: str) -> str:
        result = subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", *args],
                                env=self.env, capture_output=True, timeout=30)
        assert result.returncode == 0, result.stderr
        return result.stdout.decode(errors="replace")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_screen(self, needle: str, timeout: float = 20.0) -> str:
        return wait_for(lambda: (lambda s: s if needle in s else None)(self.screen()),
                        timeout, message=f"{needle!r} on the screen")

    def stty(self) -> str:
        """A digest of the shell's terminal settings (`stty -g`: too long for one line)."""
        marker = uuid.uuid4().hex[:6]
        self.type(f"echo {marker}-$(stty -g | md5sum | cut -c1-12)-{marker}", "Enter")

        def printed() -> str | None:
            lines = [x for x in self.screen().splitlines() if x.startswith(f"{marker}-")]
            return lines[-1][len(marker) + 1:-len(marker) - 1] if lines else None

        return str(wait_for(printed, 20, message="the terminal settings"))

    def ready(self) -> None:
        self.type("echo shell-$((2*3))-ready", "Enter")
        self.wait_screen("shell-6-ready")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True,
                       timeout=30)


@pytest.fixture
def tmux(env):
    session = Tmux(env)
    try:
        session.ready()
        yield session
    finally:
        session.close()


def attach_line(task_id: str) -> str:
    return f"{PY} -m ghost attach {task_id}"


def test_attach_shows_the_screen_takes_keys_and_detaches(env, tmux):
    task = run_json("--pty", "bash", "--norc", "--noprofile", "-i", env={**env, "PS1": "task$ "})
    wait_for(lambda: b"task$" in ghost("log", task["id"], env=env).stdout, message="a prompt")
    before = tmux.stty()
    tmux.type(attach_line(task["id"]), "Enter")
    tmux.wait_screen("Ctrl-] detaches")
    tmux.wait_screen("task$")  # the recent output replayed
    tmux.type("echo $((6*7))-from-attach", "Enter")
    tmux.wait_screen("42-from-attach")
    tmux.type("tput cols", "Enter")  # the window size follows the attaching terminal
    tmux.wait_screen("\n100\n")
    tmux.type("C-]")
    tmux.wait_screen("ghost: detached")
    assert tmux.stty() == before  # the terminal is restored
    assert status_json(task["id"], env)["status"] == "running"  # the task keeps running
    assert b"42-from-attach" in ghost("log", task["id"], env=env).stdout
    ghost("kill", task["id"], env=env)


def test_two_attachers_see_the_same_output(env, tmux):
    task = run_json("--pty", "bash", "--norc", "--noprofile", "-i", env={**env, "PS1": "task$ "})
    other = Tmux(env)
    try:
        other.ready()
        for t in (tmux, other):
            t.type(attach_line(task["id"]), "Enter")
            t.wait_screen("Ctrl-] detaches")
        tmux.type("echo shared-$((1+1))", "Enter")
        for t in (tmux, other):
            t.wait_screen("shared-2")
    finally:
        other.close()
        ghost("kill", task["id"], env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_the_terminal_is_restored_when_attach_is_killed(env, tmux, sig):
    task = run_json("--pty", "sleep", "60", env=env)
    before = tmux.stty()
    tmux.type(attach_line(task["id"]), "Enter")
    tmux.wait_screen("Ctrl-] detaches")
    pids = wait_for(lambda: subprocess.run(["pgrep", "-f", f"ghost attach {task['id']}"],
                                           capture_output=True).stdout.split(),
                    message="the attach process")
    for pid in pids:
        os.kill(int(pid), sig)
    tmux.wait_screen("ghost: detached")
    assert tmux.stty() == before
    ghost("kill", task["id"], env=env)


def test_attach_reports_the_end_of_the_task(env, tmux):
    task = run_json("--pty", "bash", "-c", "read line; echo bye-$line", env=env)
    tmux.type(attach_line(task["id"]), "Enter")
    tmux.wait_screen("Ctrl-] detaches")
    tmux.type("now", "Enter")
    tmux.wait_screen("exited with code 0")
    assert "bye-now" in tmux.screen()


def test_attach_shows_the_last_output_before_the_end(env, tmux, tmp_path):
    """The monitor closes the inbox (attach's sign of the end) as soon as the task's exit is
    seen and copies what is still in the PTY into the log after that. Freezing the monitor
    while the task writes 6 KB (9 KB on the PTY, which holds 15) and exits leaves more output
    pending than one read takes; the seam holds the copy back 0.5 s more. attach must show
    the last line before it says how the task ended (CI under load once lost it)."""
    go = tmp_path / "go"  # the task writes only once its monitor is frozen
    task = run_json("--pty", "bash", "-c",
                    f"read line; until [ -e {go} ]; do sleep 0.02; done; "
                    "yes | head -c 6000; echo; echo last-$line",
                    env={**env, DRAIN_PAUSE_ENV: "0.5"})
    monitor = read_stat(task["pid"]).ppid
    tmux.type(attach_line(task["id"]), "Enter")
    tmux.wait_screen("Ctrl-] detaches")
    tmux.type("now", "Enter")
    wait_for(lambda: "now" in ghost("log", task["id"], env=env).stdout.decode(),
             message="the task's echo of the input")
    os.kill(monitor, signal.SIGSTOP)
    try:
        go.touch()
        wait_for(lambda: read_stat(task["pid"]).state == "Z", message="the task's exit")
    finally:
        os.kill(monitor, signal.SIGCONT)
    screen = tmux.wait_screen("exited with code 0")
    assert "last-now" in screen
    assert screen.index("last-now") < screen.index("exited with code 0")


def test_attach_refuses_a_task_without_a_terminal(env):
    task = run_json("--stdin", "sleep", "30", env=env)
    result = ghost("attach", task["id"], env=env)
    assert result.returncode == 1
    assert text(result) == ("", f"Error: task {task['id']} has no terminal (start it with "
                                "--pty)\n")
    plain = run_json("sleep", "30", env=env)
    result = ghost("attach", plain["id"], env=env)
    assert text(result)[1] == (f"Error: task {plain['id']} takes no input (start it with --pty "
                               "or --stdin)\n")
    for t in (task, plain):
        ghost("kill", t["id"], env=env)
