"""`ghost ui` as a user runs it: the installed command in a real terminal (tmux), and without
Textual installed."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from support import run_json, text
from tui_support import TMUX, Terminal


def test_without_textual_it_says_how_to_install_it(env):
    code = ("import runpy, sys; sys.modules['textual'] = None; sys.argv = ['ghost', 'ui'];"
            "runpy.run_module('ghost', run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            timeout=60)
    assert result.returncode == 1
    assert text(result) == ("", "Error: ghost ui needs Textual: pip install 'ghost-tasks[tui]'\n")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_the_installed_command_in_a_real_terminal(data_dir, env, tmp_path):
    pytest.importorskip("textual")
    task = run_json("sh", "-c", "echo $((6*7)) is the answer; sleep 300", env=env)["id"]
    ghost = os.path.join(os.path.dirname(sys.executable), "ghost")
    # After the UI exits, the shell prints its exit code and waits, so the screen it left
    # behind can be read: the terminal restored, nothing else printed.
    command = (f"env GHOST_DATA_DIR={shlex.quote(data_dir)} {shlex.quote(ghost)} ui; "
               "echo UI-EXIT=$?; sleep 60")
    term = Terminal(str(tmp_path / "tmux.sock"), command, env)
    try:
        term.wait_for(lambda s: task[:8] in s and "running" in s, what="the task's row")
        term.keys("l")
        # (the output is not in the command line, which the task list shows too)
        term.wait_for(lambda s: "42 is the answer" in s, what="the log view")
        term.keys("Escape")  # alone: ESC then s at once would read as Alt+s
        term.wait_for(lambda s: "All 1" in s, what="the task list again")
        term.keys("s")
        term.wait_for(lambda s: "killed SIGTERM" in s, what="the stopped task")
        term.keys("q")
        left = term.wait_for(lambda s: "UI-EXIT=" in s, what="the UI to exit")
        assert [line for line in left.splitlines() if line.strip()] == ["UI-EXIT=0"]
    finally:
        term.close()
    assert not term.alive()


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_a_store_that_cannot_be_opened_is_one_error_line_after_the_screen_closes(data_dir, env,
                                                                                 tmp_path):
    pytest.importorskip("textual")
    os.makedirs(data_dir, mode=0o700)
    os.chmod(data_dir, 0o777)  # writable by others: ghost refuses it
    ghost = os.path.join(os.path.dirname(sys.executable), "ghost")
    command = (f"env GHOST_DATA_DIR={shlex.quote(data_dir)} {shlex.quote(ghost)} ui; "
               "echo UI-EXIT=$?; sleep 60")
    term = Terminal(str(tmp_path / "tmux.sock"), command, env)
    try:
        left = term.wait_for(lambda s: "UI-EXIT=" in s, what="the UI to exit")
    finally:
        term.close()
    lines = [line for line in left.splitlines() if line.strip()]
    assert lines[-1] == "UI-EXIT=1", left
    message = "".join(lines[:-1])  # one line, wrapped by the 100-column window
    assert message.startswith("Error: refusing data directory "), left
    assert message.endswith("it is writable by group or others (mode 0777); chmod 700 it"), left
