"""`a` in `ghost ui`: attach to a --pty task's terminal (the UI suspended meanwhile), then back.
Refusals are notifications (Pilot); the session itself runs in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shlex
import sys

import pytest

pytest.importorskip("textual")

from support import ghost, run_json  # noqa: E402
from tui_support import (  # noqa: E402
    TMUX,
    Terminal,
    loaded,
    messages,
    run,
    select,
    ui_store,  # noqa: F401 - the fixture closes the store after each test
    until,
)

from ghost.tui.app import GhostApp  # noqa: E402

ECHO = "while read line; do echo \"got: $line\"; done"


def events_of(task_id: str, env: dict[str, str]) -> list[dict]:
    out = ghost("events", env=env).stdout.decode().splitlines()
    return [e for e in map(json.loads, out) if e["task"] == task_id]


def test_attach_is_refused_with_a_reason_and_the_ui_goes_on(data_dir, env):
    plain = run_json("sleep", "306", env=env)["id"]
    piped = run_json("--stdin", "sh", "-c", ECHO, env=env)["id"]
    terminal = run_json("--pty", "sh", "-c", ECHO, env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            for task_id, reason in ((plain, "takes no input"), (piped, "has no terminal"),
                                    (terminal, "needs a real terminal")):
                select(app, task_id)
                await pilot.press("a")
                await until(pilot, lambda r=reason: any(r in m for m in messages(app)),
                            message=reason)
            assert app.screen is app.main  # (Pilot's terminal cannot be handed over)
            await pilot.press("q")
        assert app.return_code == 0

    run(body())
    assert not [e for e in events_of(terminal, env) if e["type"] == "input_sent"]


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_attach_in_a_real_terminal_then_detach_back_to_the_ui(data_dir, env, tmp_path):
    task = run_json("--pty", "sh", "-c", ECHO, env=env)["id"]
    exe = os.path.join(os.path.dirname(sys.executable), "ghost")
    command = (f"env GHOST_DATA_DIR={shlex.quote(data_dir)} {shlex.quote(exe)} ui; "
               "echo UI-EXIT=$?; sleep 60")
    term = Terminal(str(tmp_path / "tmux.sock"), command, env)
    try:
        term.wait_for(lambda s: task[:8] in s and "running" in s, what="the task's row")
        term.keys("a")
        term.wait_for(lambda s: f"attached to task {task[:8]}" in s, what="the session")
        term.keys("hello there", "Enter")
        term.wait_for(lambda s: "got: hello there" in s, what="the task's answer")
        term.keys("C-]")
        shown = term.wait_for(lambda s: "All 1" in s and "Detached from task" in s,
                              what="the task list again")
        assert "got: hello there" not in shown  # the UI's own screen is back
        # Attached again, ^D ends the task's input: the task ends, the UI says how.
        term.keys("a")
        term.wait_for(lambda s: "got: hello there" in s, what="the recent output replayed")
        term.keys("C-d")
        term.wait_for(lambda s: f"Task {task[:8]} exited with code 0" in s and "All 1" in s,
                      what="the task's end")
        term.keys("q")
        left = term.wait_for(lambda s: "UI-EXIT=" in s, what="the UI to exit")
        assert [line for line in left.splitlines() if line.strip()] == ["UI-EXIT=0"]
    finally:
        term.close()
    sent = [e for e in events_of(task, env) if e["type"] == "input_sent"]
    assert [(e["bytes"], e["actor"]["via"]) for e in sent] == [
        (len("hello there\r"), "tui"), (1, "tui")]
