"""Screenshots of `ghost ui`'s main screens, compared with the SVGs under __snapshots__/ (run
`pytest tests/test_tui_snapshots.py --snapshot-update` after an intended change, and look at
them). The store holds fixed events and the app a fixed clock, so every pixel is reproducible."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("pytest_textual_snapshot")

from tui_support import fixed_clock, fixed_store, ui_store, until  # noqa: E402, F401

from ghost.tui.app import GhostApp  # noqa: E402

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


@pytest.fixture
def app(data_dir, monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    fixed_store(data_dir)
    yield GhostApp(clock=fixed_clock, resources=False)  # CPU and memory are never the same
    monkeypatch.undo()
    time.tzset()


def ready(*keys: str, wait: str = ""):
    """Wait for the first task list, press `keys`, then wait until the screen shows `wait`."""

    async def run_before(pilot) -> None:
        app = pilot.app
        await until(pilot, lambda: app.main.loaded, message="the task list")
        for key in keys:
            await pilot.press(key)
        if wait:
            await until(pilot, lambda: wait in _screen_text(app), message=repr(wait))
        await pilot.pause()

    return run_before


def _screen_text(app) -> str:
    return app.export_screenshot()


@pytest.mark.parametrize("size", SIZES)
def test_task_list(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=ready())


@pytest.mark.parametrize("size", SIZES)
def test_log_view(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size, run_before=ready("l", wait="favicon"))


@pytest.mark.parametrize("size", SIZES)
def test_details(snap_compare, app, size):
    assert snap_compare(app, terminal_size=size,
                        run_before=ready("j", "j", "j", "j", "enter", wait="History"))


def test_history_of_all_tasks(snap_compare, app):
    assert snap_compare(app, terminal_size=(160, 48),
                        run_before=ready("h", "a", wait="ruff"))  # (the SVG has no plain spaces)


def test_filter_and_search(snap_compare, app):
    assert snap_compare(app, terminal_size=(120, 24),
                        run_before=ready("tab", "tab", "slash", "p", "y", "enter"))


def test_help(snap_compare, app):
    assert snap_compare(app, terminal_size=(100, 40), run_before=ready("question_mark"))
