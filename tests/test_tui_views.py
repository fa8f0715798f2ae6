"""`ghost ui` screens other than the task list: the log view (bounded, followed, escapes made
safe), details, history, time travel, help; NO_COLOR; errors; a store that cannot be opened."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

import pytest

pytest.importorskip("textual")

from support import run_json, wait_ended  # noqa: E402
from tui_support import (  # noqa: E402
    loaded,
    messages,
    rendered_lines,
    row_ids,
    run,
    select,
    ui_store,  # noqa: F401 - the fixture closes the store after each test
    until,
)

from ghost.tui.app import GhostApp  # noqa: E402
from ghost.tui.dialogs import HelpScreen, help_text  # noqa: E402
from ghost.tui.logscreen import MAX_LINE_CHARS, MAX_LINES, LogScreen  # noqa: E402
from ghost.tui.sanitize import render  # noqa: E402
from ghost.tui.tasks import TasksScreen  # noqa: E402

NASTY = (b"\x1b[31mred\x1b[0m plain \x1b]0;title\x07\x1b[2J\x1b[H\x1b[6n\x1bPq#0\x1b\\"
         b"\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ bell\x07 back\x08 nul\x00 \x9b31m end")


def test_output_is_drawn_with_colours_and_nothing_else():
    text = render(NASTY)
    assert "\x1b" not in text.plain and not any(ord(c) < 32 for c in text.plain)
    assert text.plain.startswith("red plain ")
    assert "link" in text.plain and "^G" in text.plain and "^H" in text.plain
    assert [(s.start, s.end, s.style.color.number) for s in text.spans] == [(0, 3, 1)]
    assert render(b"50%\r100%\r\n").plain == "100%"  # a progress bar shows its last state
    assert render(b"\xff\xfe ok").plain == "\ufffd\ufffd ok"
    assert render(b"\x1b[31mred", colour=False).spans == []


def test_log_view_opens_on_the_end_follows_and_scrolls(data_dir, env):
    script = ("i=0; while [ $i -lt 3000 ]; do echo line $i; i=$((i+1)); done;"
              " printf '\\033[32mgreen\\033[0m\\033]0;evil\\007\\n'; sleep 300")
    task = run_json("sh", "-c", script, env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(app, pilot)
            await pilot.press("l")
            screen = app.screen
            assert isinstance(screen, LogScreen)
            log = screen.log_widget
            await until(pilot, lambda: "green" in rendered_lines(log)[-1:], message="the tail")
            lines = rendered_lines(log)
            assert lines[-2] == "line 2999" and len(lines) <= MAX_LINES
            assert not any("\x1b" in line for line in lines)
            assert screen.feed is not None and screen.following
            # Follow: new output shows up at the bottom.
            with open(os.path.join(data_dir, "logs", f"{task}.log"), "ab") as f:
                f.write(b"appended 1\nappended 2\n")
            await until(pilot, lambda: rendered_lines(log)[-1] == "appended 2")
            await pilot.press("ctrl+f")
            assert not screen.following
            await pilot.press("f")
            assert screen.following
            await pilot.press("g")
            assert log.scroll_y == 0
            await pilot.press("j", "j")
            assert log.scroll_y == 2
            await pilot.press("k")
            assert log.scroll_y == 1
            await pilot.press("ctrl+d")
            assert log.scroll_y > 1
            down = log.scroll_y
            await pilot.press("ctrl+u")
            assert log.scroll_y < down
            await pilot.press("G")
            await until(pilot, lambda: log.scroll_y == log.max_scroll_y)
            await pilot.press("escape")
            assert app.screen is app.main
            await pilot.press("q")

    run(body())


def test_a_huge_log_opens_on_its_last_lines_without_reading_it(data_dir, env):
    task = run_json("sh", "-c", "echo first", env=env)["id"]
    wait_ended(task, env)
    path = os.path.join(data_dir, "logs", f"{task}.log")
    with open(path, "r+b") as f:
        f.truncate(1 << 30)  # a 1 GB log (sparse: nothing on disk)
        f.seek(0, os.SEEK_END)
        f.write(b"\nsecond to last\nlast line\n")

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(app, pilot)
            await pilot.press("l")
            log = app.screen.log_widget
            await until(pilot, lambda: rendered_lines(log)[-1:] == ["last line"])
            lines = rendered_lines(log)
            assert lines[0].startswith("... (earlier output not shown: ")
            assert lines[-2] == "second to last"
            # The one line of NULs before it is shown cut short, never whole.
            assert all(len(line) < MAX_LINE_CHARS + 40 for line in lines)
            await pilot.press("q")
            assert app.screen is app.main

    run(body())


def test_details_history_time_travel_and_help(data_dir, env):
    first = run_json("--env", "API_TOKEN=hunter2", "sh", "-c", "exit 4", env=env)["id"]
    wait_ended(first, env)
    middle = datetime.now(tz=UTC).isoformat()
    second = run_json("sleep", "300", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(app, pilot)
            select(app, first)
            await pilot.press("enter")
            body = app.screen.query_one("#body")
            await until(pilot, lambda: "History" in str(body.render()), message="details")
            shown = str(body.render())
            assert "API_TOKEN" in shown and "hunter2" not in shown
            assert "exited 4" in shown and "spawned" in shown and "exited" in shown
            await pilot.press("escape", "h")
            events = app.screen.query_one("#events")
            await until(pilot, lambda: events.row_count == 2, message="the task's history")
            await pilot.press("a")
            await until(pilot, lambda: events.row_count >= 3, message="every task's history")
            await pilot.press("escape", "t")
            await pilot.press(*middle, "enter")
            await until(pilot, lambda: app.main.at == middle, message="time travel")
            assert row_ids(app) == [first]
            await pilot.press("s")  # acting on the past is refused, nothing is stopped
            assert any("Time travel shows the past" in m for m in messages(app))
            await pilot.press("t")  # back to live
            await until(pilot, lambda: row_ids(app) == [second, first])
            await pilot.press("t", *"not a time", "enter")
            await until(pilot, lambda: any("cannot understand time" in m for m in messages(app)))
            assert app.main.at is None
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(body())


def test_no_color_is_honoured(data_dir, env, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    run_json("sh", "-c", "printf '\\033[31mred\\033[0m\\n'", env=env)

    async def body() -> None:
        app = GhostApp()
        assert app.no_color and not app.colour
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(app, pilot)
            await pilot.press("l")
            log = app.screen.log_widget
            await until(pilot, lambda: rendered_lines(log)[-1:] == ["red"])
            styles = [seg.style for line in log.lines for seg in line if seg.style]
            assert not any(s.color or s.bgcolor for s in styles)
            await pilot.press("escape", "q")

    run(body())


def test_a_store_that_cannot_be_opened_ends_the_app_with_one_message(data_dir):
    os.makedirs(data_dir, mode=0o700)
    os.chmod(data_dir, 0o777)  # unsafe: ghost refuses to use it

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.failure is not None, message="the failure")
        return app

    app = run(body())
    assert "writable by" in app.failure or "permission" in app.failure.lower(), app.failure
    assert app.return_code == 1


def _keys(binding_key: str) -> list[str]:
    names = {"question_mark": "?", "slash": "/", "escape": "Esc", "enter": "Enter",
             "tab": "Tab", "shift+tab": "Shift+Tab", "down": "Down", "up": "Up",
             "pagedown": "PgDn", "pageup": "PgUp", "home": "g", "end": "G", "left": "h",
             "right": "l"}
    return [names.get(k) or (k.replace("ctrl+", "Ctrl+").upper() if k.startswith("ctrl+")
                             else k) for k in binding_key.split(",")]


def test_every_key_is_in_the_help():
    shown = help_text()
    for screen in (TasksScreen, LogScreen):
        for binding in screen.BINDINGS:
            for key in _keys(binding.key):
                key = key.replace("CTRL+", "Ctrl+")
                assert key in shown, (screen.__name__, binding.key)


def test_a_task_whose_monitor_died_turns_unknown_without_any_commit(data_dir, env):
    task_id = run_json("sleep", "305", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            task = app.main.tasks[task_id]
            # Both processes were started by this test (through ghost run): killed by pid.
            os.kill(task.monitor_pid, signal.SIGKILL)
            os.kill(task.pid, signal.SIGKILL)
            # Nothing is committed until the list's safety-net wake-up reconciles the task.
            await until(pilot, lambda: app.main.tasks[task_id].status == "unknown",
                        message="reconciliation")
            await pilot.press("q")

    run(body())


def test_a_tiny_terminal_and_resizes_do_not_break_it(data_dir, env):
    run_json("sh", "-c", "echo small", env=env)

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(40, 10)) as pilot:
            await loaded(app, pilot)
            await pilot.resize_terminal(20, 5)
            await pilot.press("l")
            await pilot.resize_terminal(200, 60)
            await pilot.press("escape", "question_mark")
            await pilot.resize_terminal(30, 6)
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(body())
