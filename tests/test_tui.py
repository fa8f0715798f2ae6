"""`ghost ui` driven by Textual's Pilot against real tasks and a real store: every key of the
task list, and what each one left in the event log."""

from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("textual")

from support import ghost, run_json, status_json, wait_ended  # noqa: E402
from tui_support import (  # noqa: E402
    cell,
    loaded,
    messages,
    row_ids,
    run,
    select,
    ui_store,  # noqa: F401 - the fixture closes the store after each test
    until,
)

from ghost.tui.app import GhostApp, takes_supervision  # noqa: E402


def events_of(task_id: str, env: dict[str, str]) -> list[dict]:
    out = ghost("events", env=env).stdout.decode().splitlines()
    return [e for e in map(json.loads, out) if e["task"] == task_id]


def test_live_table_filters_search_sort_and_moves(data_dir, env):
    done = run_json("sh", "-c", "exit 3", env=env)["id"]
    wait_ended(done, env)
    sleeper = run_json("sleep", "300", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(app, pilot)
            assert row_ids(app) == [sleeper, done]  # newest first
            assert cell(app, done, "status") == "exited 3"
            assert cell(app, sleeper, "status") == "running"
            # A task started elsewhere appears without any key being pressed (woken by commits).
            third = run_json("sh", "-c", "echo hi; sleep 300", env=env)["id"]
            await until(pilot, lambda: third in row_ids(app), message="the new task's row")
            assert row_ids(app)[0] == third
            await pilot.press("tab")  # Running
            assert app.main.filter == "running" and set(row_ids(app)) == {sleeper, third}
            await pilot.press("tab")  # Exited
            assert row_ids(app) == [done]
            await pilot.press("tab", "tab", "tab")  # Killed, Unknown, All
            assert app.main.filter == "all" and len(row_ids(app)) == 3
            await pilot.press("shift+tab")
            assert app.main.filter == "unknown" and row_ids(app) == []
            await pilot.press("tab")
            await pilot.press("slash", *"echo", "enter")
            assert row_ids(app) == [third]
            await pilot.press("escape")  # clears the search
            assert app.main.needle == "" and len(row_ids(app)) == 3
            await pilot.press("slash", *sleeper[:6])
            assert row_ids(app) == [sleeper]
            await pilot.press("escape")
            await pilot.press("o")  # sort by the next column (duration), newest first
            assert app.main.sort_key == "duration"
            while app.main.sort_key != "command":  # (CPU and memory columns may come first)
                await pilot.press("o")
            assert row_ids(app)[0] == sleeper
            await pilot.press("O")
            assert not app.main.reverse and row_ids(app)[-1] == sleeper
            while app.main.sort_key != "started":  # on round the columns
                await pilot.press("o")
            assert app.main.sort_key == "started"
            await pilot.press("O")
            table = app.main.table
            await pilot.press("G")
            assert table.cursor_row == 2
            await pilot.press("k")
            assert table.cursor_row == 1
            await pilot.press("g")
            assert table.cursor_row == 0
            await pilot.press("j")
            assert table.cursor_row == 1
            await pilot.press("ctrl+d")
            assert table.cursor_row == 2
            await pilot.press("ctrl+u")
            assert table.cursor_row == 0
            await pilot.press("q")
        assert app.return_code == 0

    run(body())


def test_stop_and_kill_act_at_once_and_record_via_tui(data_dir, env):
    stopped = run_json("sleep", "301", env=env)["id"]
    killed = run_json("sleep", "302", env=env)["id"]
    aliased = run_json("sleep", "303", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            select(app, stopped)
            await pilot.press("s")
            await until(pilot, lambda: any("killed by SIGTERM" in m for m in messages(app)),
                        message="the stop notification")
            await until(pilot, lambda: cell(app, stopped, "status") == "killed SIGTERM")
            select(app, killed)
            await pilot.press("ctrl+k")
            select(app, aliased)
            await pilot.press("K")
            await until(pilot, lambda: sum("killed by SIGKILL" in m for m in messages(app)) == 2,
                        message="two kill notifications")
            # Stopping a task that already ended is an error notification, not a crash.
            select(app, stopped)
            await pilot.press("s")
            await until(pilot, lambda: any("is not running" in m for m in messages(app)))
            await pilot.press("ctrl+c")
        assert app.return_code == 0

    run(body())
    for task_id, signal, force in ((stopped, "SIGTERM", False), (killed, "SIGKILL", True),
                                   (aliased, "SIGKILL", True)):
        stops = [e for e in events_of(task_id, env) if e["type"] == "stop_requested"]
        assert [(e["signal"], e["force"], e["actor"]["via"]) for e in stops] == \
            [(signal, force, "tui")]
        assert status_json(task_id, env)["signal"] == signal


def test_run_dialog_rerun_and_cleanup(data_dir, env, tmp_path):
    first = run_json("sh", "-c", "echo first", env=env)["id"]
    wait_ended(first, env)
    work = tmp_path / "work"
    work.mkdir()

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            await pilot.press("n")
            await pilot.press(*"sh -c 'echo $GREETING; pwd'")
            cwd_box = app.screen.query_one("#cwd")
            cwd_box.value = str(work)
            app.screen.query_one("#env").value = "GREETING=hello"
            if takes_supervision():
                app.screen.query_one("#name").value = "greeter"
                app.screen.query_one("#group").value = "demo"
            await pilot.press("enter")
            await until(pilot, lambda: len(row_ids(app)) == 2, message="the new task")
            new = row_ids(app)[0]
            await until(pilot, lambda: cell(app, new, "status") == "exited 0")
            select(app, first)
            await pilot.press("r")
            await until(pilot, lambda: len(row_ids(app)) == 3, message="the rerun")
            rerun = row_ids(app)[0]
            await until(pilot, lambda: cell(app, rerun, "status") == "exited 0")
            # A bad command is refused with the action's own message.
            await pilot.press("n", *"no-such-command-xyz", "enter")
            await until(pilot, lambda: any("command not found: no-such-command-xyz" in m
                                           for m in messages(app)))
            # Cleanup asks first: n keeps everything, y removes the selected task only.
            select(app, first)
            await pilot.press("c", "n")
            assert len(row_ids(app)) == 3
            await pilot.press("c", "y")
            await until(pilot, lambda: first not in row_ids(app), message="one task cleaned")
            assert len(row_ids(app)) == 2
            await pilot.press("c", "a")
            await until(pilot, lambda: row_ids(app) == [], message="all finished cleaned")
            await pilot.press("q")
        return new, rerun

    new, rerun = run(body())
    spawned = [e for e in events_of(new, env) if e["type"] == "spawned"][0]
    assert spawned["actor"]["via"] == "tui"
    assert spawned["cwd"] == str(work) and spawned["env_keys"] == ["GREETING"]
    if takes_supervision():
        assert (spawned["name"], spawned["group"]) == ("greeter", "demo")
    assert "hello" not in json.dumps(spawned)  # the value is never stored
    again = [e for e in events_of(rerun, env) if e["type"] == "spawned"][0]
    assert again["command"] == ["sh", "-c", "echo first"] and again["actor"]["via"] == "tui"
    cleaned = [e for e in events_of(first, env) if e["type"] == "cleaned"]
    assert cleaned[0]["actor"]["via"] == "tui"
    assert not os.path.exists(os.path.join(data_dir, "logs", f"{first}.log"))
    failed = [json.loads(x) for x in ghost("events", env=env).stdout.decode().splitlines()]
    assert any(e["type"] == "spawn_failed" and e["actor"]["via"] == "tui" for e in failed)


def test_restart_is_the_next_attempt_of_the_same_task(data_dir, env):
    looping = run_json("sleep", "304", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            select(app, looping)
            await pilot.press("R")
            done = await until(pilot, lambda: [m for m in messages(app)
                                               if "restarted" in m or "cannot" in m],
                               message="the restart's outcome")
            assert "restarted" in done[0], done
            await until(pilot, lambda: app.main.tasks[looping].attempt == 2)
            assert app.main.tasks[looping].running
            await pilot.press("q")

    run(body())
    kinds = [(e["type"], e.get("actor", {}).get("via")) for e in events_of(looping, env)]
    assert ("restart_requested", "tui") in kinds and ("stop_requested", "tui") in kinds


def test_send_a_line_to_a_task_input(data_dir, env):
    reader = run_json("--stdin", "sh", "-c", "read line; echo got $line", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(120, 30)) as pilot:
            await loaded(app, pilot)
            select(app, reader)
            await pilot.press("i", *"hi there", "enter")
            await until(pilot, lambda: cell(app, reader, "status") == "exited 0",
                        message="the reader to end")
            await pilot.press("q")

    run(body())
    assert ghost("log", reader, env=env).stdout.decode() == "got hi there\n"
    sent = [e for e in events_of(reader, env) if e["type"] == "input_sent"]
    assert [(e["bytes"], e["actor"]["via"]) for e in sent] == [(9, "tui")]


def test_table_mouse_keys_and_horizontal_scroll(data_dir, env):
    first = run_json("sh", "-c", "exit 0", env=env)["id"]
    wait_ended(first, env)
    long = run_json("sh", "-c", "echo " + "x" * 70 + "; exit 2", env=env)["id"]
    wait_ended(long, env)

    async def body() -> None:
        app = GhostApp(resources=False)
        async with app.run_test(size=(60, 20)) as pilot:
            await loaded(app, pilot)
            table = app.main.table
            assert row_ids(app) == [long, first] and table.cursor_row == 0
            # A click on a header sorts by that column; on it again, the other way.
            x = sum(w + 2 for w in table.widths[:table.column_keys.index("status")]) + 1
            assert await pilot.click("#tasks", offset=(x, 0))
            await until(pilot, lambda: app.main.sort_key == "status" and app.main.reverse)
            assert await pilot.click("#tasks", offset=(x, 0))
            await until(pilot, lambda: not app.main.reverse, message="the order reversed")
            order = row_ids(app)
            # A click on a row moves the cursor there; a click on the cursor's row, details.
            other = 1 - table.cursor_row  # (the cursor stayed on its task)
            assert await pilot.click("#tasks", offset=(2, other + 1))
            await until(pilot, lambda: table.cursor_row == other)
            assert app.main.selected().id == order[other]
            assert await pilot.click("#tasks", offset=(2, other + 1))
            await until(pilot, lambda: app.screen is not app.main, message="the details")
            await pilot.press("escape")
            await pilot.press("up")
            assert table.cursor_row == 0
            await pilot.press("down", "down")  # (stops at the last row)
            assert table.cursor_row == 1
            await pilot.press("home")
            assert table.cursor_row == 0
            # The table is wider than 60 columns: Right / Left scroll it sideways.
            assert table.virtual_size.width > 60
            await pilot.press("right")
            await until(pilot, lambda: table.scroll_x > 0, message="a scroll right")
            await pilot.press("left")
            await until(pilot, lambda: table.scroll_x == 0, message="a scroll back")
            await pilot.press("enter")
            await until(pilot, lambda: app.screen is not app.main, message="details by Enter")
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(body())
