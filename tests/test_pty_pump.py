"""The pump with real PTYs, pipes and child processes (no store): what the task sees, what the
log gets, and what the inbox delivers."""

from __future__ import annotations

import os
import re
import sys

import pytest
from support import pid_alive, wait_for

from ghost.process import inbox
from ghost.process.pump import index_path

PY = sys.executable


def test_pty_task_sees_a_terminal(drive):
    code = "import sys; print(sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty())"
    driven = drive([PY, "-c", code], {"pty": True})
    assert driven.status() == 0
    assert driven.log() == b"True True True\r\n"  # the terminal's own line ending


def test_stdin_task_sees_pipes(drive):
    code = "import sys; print(sys.stdin.isatty(), sys.stdout.isatty()); print(sys.stdin.read())"
    driven = drive([PY, "-c", code], {"stdin": True})
    assert driven.request(inbox.WRITE, b"hello\n") == ""
    assert driven.request(inbox.EOF) == ""
    assert driven.status() == 0
    assert driven.log() == b"False False\nhello\n\n"


def test_send_answers_a_read_prompt_on_a_pty(drive):
    script = 'read -p "continue? " answer; echo "got:$answer"'
    driven = drive(["bash", "-c", script], {"pty": True})
    wait_for(lambda: b"continue?" in driven.log())
    driven.request(inbox.WRITE, b"yes\n")
    assert driven.status() == 0
    assert b"got:yes" in driven.log()


def test_eof_on_a_pty_is_ctrl_d(drive):
    driven = drive(["cat"], {"pty": True})
    driven.request(inbox.WRITE, b"abc\n")
    driven.request(inbox.EOF)
    assert driven.status() == 0
    assert driven.log().count(b"abc") == 2  # the terminal's echo, then cat's copy


def test_resize_reaches_the_task(drive):
    script = ('trap \'echo "winch $(tput cols)x$(tput lines)"\' WINCH; echo "start $(tput cols)";'
              ' for i in $(seq 200); do sleep 0.05; done')
    driven = drive(["bash", "-c", script], {"pty": True, "cols": 100, "rows": 30},
                   env={"TERM": "xterm-256color"})
    wait_for(lambda: b"start 100" in driven.log())
    driven.request(inbox.RESIZE, (132).to_bytes(2, "little") + (40).to_bytes(2, "little"))
    wait_for(lambda: b"winch 132x40" in driven.log())
    os.kill(driven.driver, 0)
    _stop_task(driven)


def test_a_task_that_closed_its_stdin(drive):
    code = "import os, time; os.close(0); print('closed', flush=True); time.sleep(30)"
    driven = drive([PY, "-c", code], {"stdin": True})
    wait_for(lambda: b"closed" in driven.log())
    with pytest.raises(inbox.Refused, match="input is closed"):
        driven.request(inbox.WRITE, b"x\n")
    _stop_task(driven)


def test_the_inbox_is_gone_once_the_task_ended(drive):
    # `head -n1` waits for one line, so the inbox is there to be seen before the task ends
    driven = drive(["head", "-n1"], {"stdin": True})
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


def test_no_input_without_pty_or_stdin(drive):
    driven = drive([PY, "-c", "print('x')"], {"timestamps": True})
    assert driven.status() == 0
    assert not os.path.exists(driven.inbox_path)
    assert driven.log() == b"x\n"
    assert os.path.getsize(index_path(driven.log_path)) >= 32


def _stop_task(driven) -> None:
    """Kill the task (the driver's child, not reaped until the pump ends) and let the pump
    finish."""
    import signal

    os.kill(driven.task, signal.SIGKILL)
    driven.status()


def test_what_a_failed_test_leaves_running_is_killed(drive):
    """The `drive` fixture's teardown: the task, its children and the driver end, by pid."""
    driven = drive(["bash", "-c", "sleep 60 & echo child $!; wait"], {"stdin": True})
    found = wait_for(lambda: re.search(rb"child (\d+)", driven.log()))
    driven.close()  # what the fixture does after a test that failed midway
    for pid in (driven.driver, driven.task, int(found.group(1))):
        wait_for(lambda pid=pid: not pid_alive(pid))
