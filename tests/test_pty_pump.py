"""The pump with real PTYs, pipes and child processes (no store): what the task sees, what the
log gets, and what the inbox delivers."""

from __future__ import annotations

import os
import sys

import pytest

from ghost.process import inbox
from ghost.process.pump import index_path
from tests.pump_support import start, wait_for

PY = sys.executable


def test_pty_task_sees_a_terminal(tmp_path):
    code = "import sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty())"
    driven = start(str(tmp_path), [PY, "-c", code], {"pty": True})
    assert driven.status() == 0
    assert driven.log() == b"True True True\r\n"  # the terminal's own line ending


def test_stdin_task_sees_pipes(tmp_path):
    code = "import sys; print(sys.stdin.isatty(), sys.stdout.isatty()); print(sys.stdin.read())"
    driven = start(str(tmp_path), [PY, "-c", code], {"stdin": True})
    assert driven.request(inbox.WRITE, b"hello\n") == ""
    assert driven.request(inbox.EOF) == ""
    assert driven.status() == 0
    assert driven.log() == b"False False\nhello\n\n"


def test_send_answers_a_read_prompt_on_a_pty(tmp_path):
    script = 'read -p "continue? " answer; echo "got:$answer"'
    driven = start(str(tmp_path), ["bash", "-c", script], {"pty": True})
    wait_for(lambda: b"continue?" in driven.log())
    driven.request(inbox.WRITE, b"yes\n")
    assert driven.status() == 0
    assert b"got:yes" in driven.log()


def test_eof_on_a_pty_is_ctrl_d(tmp_path):
    driven = start(str(tmp_path), ["cat"], {"pty": True})
    driven.request(inbox.WRITE, b"abc\n")
    driven.request(inbox.EOF)
    assert driven.status() == 0
    assert driven.log().count(b"abc") == 2  # the terminal's echo, then cat's copy


def test_resize_reaches_the_task(tmp_path):
    script = ('trap \'echo "winch $(tput cols)x$(tput lines)"\' WINCH; echo "start $(tput cols)";'
              ' for i in $(seq 200); do sleep 0.05; done')
    driven = start(str(tmp_path), ["bash", "-c", script], {"pty": True, "cols": 100, "rows": 30},
                   env={"TERM": "xterm-256color"})
    wait_for(lambda: b"start 100" in driven.log())
    driven.request(inbox.RESIZE, (132).to_bytes(2, "little") + (40).to_bytes(2, "little"))
    wait_for(lambda: b"winch 132x40" in driven.log())
    os.kill(driven.driver, 0)
    _stop_task(driven)


def test_a_task_that_closed_its_stdin(tmp_path):
    code = "import os, time; os.close(0); print('closed', flush=True); time.sleep(30)"
    driven = start(str(tmp_path), [PY, "-c", code], {"stdin": True})
    wait_for(lambda: b"closed" in driven.log())
    with pytest.raises(inbox.Refused, match="input is closed"):
        driven.request(inbox.WRITE, b"x\n")
    _stop_task(driven)


def test_the_inbox_is_gone_once_the_task_ended(tmp_path):
    # `head -n1` waits for one line, so the inbox is there to be seen before the task ends
    driven = start(str(tmp_path), ["head", "-n1"], {"stdin": True})
    driven.request(inbox.WRITE, b"bye\n")
    assert driven.status() == 0
    assert not os.path.exists(driven.inbox_path)
    with pytest.raises(inbox.Refused, match="not listening"):
        inbox.connect(driven.inbox_path)


def test_a_symlinked_or_foreign_inbox_is_refused(tmp_path):
    target = tmp_path / "elsewhere.sock"
    target.write_bytes(b"")
    link = tmp_path / "task.sock"
    link.symlink_to(target)
    with pytest.raises(inbox.Refused, match="symlink"):
        inbox.connect(str(link))
    with pytest.raises(inbox.Refused, match="not a socket"):
        inbox.connect(str(target))


def test_no_input_without_pty_or_stdin(tmp_path):
    driven = start(str(tmp_path), [PY, "-c", "print('x')"], {"timestamps": True})
    assert driven.status() == 0
    assert not os.path.exists(driven.inbox_path)
    assert driven.log() == b"x\n"
    assert os.path.getsize(index_path(driven.log_path)) >= 32


def _stop_task(driven) -> None:
    """Kill the task (the driver's child) and let the pump finish."""
    import signal

    for line in os.popen(f"ps -o pid= --ppid {driven.driver}").read().split():
        os.kill(int(line), signal.SIGKILL)
    driven.status()
