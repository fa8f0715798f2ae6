"""`ghost ui`'s log view of a task whose output has stream tags (--timestamps, --stdin): lines
written to stderr are marked, on opening and while following."""

from __future__ import annotations

import pytest

pytest.importorskip("textual")

from support import run_json  # noqa: E402
from tui_support import (  # noqa: E402
    T0,
    S,
    loaded,
    rendered_lines,
    run,
    select,
    tagged_log,
    ui_store,  # noqa: F401 - the fixture closes the store after each test
    until,
)

from ghost.actions.logread import Options  # noqa: E402
from ghost.process.pump import STDERR, STDOUT, index_path, record  # noqa: E402
from ghost.tui.app import GhostApp  # noqa: E402
from ghost.tui.logscreen import ERR_MARK, LogScreen  # noqa: E402
from ghost.tui.streams import UNTAGGED, Tagger  # noqa: E402

PLAIN = " " * len(ERR_MARK)


def _red(log, text: str) -> bool:
    """Whether the drawn line showing `text` has red in it (the marker and the text)."""
    for line in log.lines:
        if "".join(seg.text for seg in line).endswith(text):
            return any(seg.style is not None and seg.style.color is not None
                       and seg.style.color.name == "red" for seg in line)
    raise AssertionError(f"no line shows {text!r}")


def test_stderr_lines_are_marked_when_the_output_has_stream_tags(data_dir, env, tmp_path):
    go = tmp_path / "go"
    # The streams are read apart, so the order of lines of different streams is not asserted.
    script = (f"echo out one; echo err one >&2; echo out two; "
              f"while [ ! -e {go} ]; do sleep 0.02; done; echo late err >&2; echo late out; "
              "sleep 300")
    tagged = run_json("--timestamps", "sh", "-c", script, env=env)["id"]
    plain = run_json("sh", "-c", "echo no tags; echo none here either >&2; sleep 300",
                     env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(app, pilot)
            select(app, tagged)
            await pilot.press("l")
            screen = app.screen
            assert isinstance(screen, LogScreen)
            log = screen.log_widget
            await until(pilot, lambda: len(rendered_lines(log)) == 3, message="three lines")
            assert screen.tagged
            assert sorted(rendered_lines(log)) == sorted(
                [PLAIN + "out one", ERR_MARK + "err one", PLAIN + "out two"])
            assert _red(log, "err one") and not _red(log, "out one")
            assert "stderr" in str(screen.query_one("#title").render())
            # Following: lines written after the view opened are tagged too.
            go.touch()
            await until(pilot, lambda: len(rendered_lines(log)) == 5, message="the late lines")
            assert set(rendered_lines(log)[3:]) == {ERR_MARK + "late err", PLAIN + "late out"}
            assert _red(log, "late err") and not _red(log, "late out")
            # A task without tags: its lines as written, no gutter.
            await pilot.press("escape")
            select(app, plain)
            await pilot.press("l")
            log = app.screen.log_widget
            await until(pilot, lambda: len(rendered_lines(log)) == 2, message="untagged lines")
            assert not app.screen.tagged
            assert set(rendered_lines(log)) == {"no tags", "none here either"}
            await pilot.press("escape", "q")

    run(body())


def test_tagger_splits_by_stream_and_keeps_bytes_no_record_covers(tmp_path):
    path = str(tmp_path / "task.log")
    tagged_log(path, [(STDOUT, b"one\n"), (STDERR, b"two\n"), (STDOUT, b"three\n")], T0)
    tagger = Tagger(path, Options())
    try:
        # In pieces, as a follower reads them: a chunk may cross a change of stream.
        assert tagger.split(b"one\ntw", 0) == [(STDOUT, b"one\n"), (STDERR, b"tw")]
        assert tagger.split(b"o\nthree\n", 6) == [(STDERR, b"o\n"), (STDOUT, b"three\n")]
    finally:
        tagger.close()
    # An index whose first record comes after the start: those bytes are kept, untagged.
    with open(path, "wb") as log:
        log.write(b"early\nlate\n")
    with open(index_path(path), "wb") as idx:
        idx.write(record(0, T0, 0) + record(6, T0 + S, STDERR))
    tagger = Tagger(path, Options())
    try:
        assert tagger.split(b"early\nlate\n", 0) == [(UNTAGGED, b"early\n"), (STDERR, b"late\n")]
    finally:
        tagger.close()


def test_stderr_marks_without_colour_under_no_color(data_dir, env, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    task = run_json("--timestamps", "sh", "-c", "echo oops >&2; sleep 300", env=env)["id"]

    async def body() -> None:
        app = GhostApp()
        async with app.run_test(size=(100, 30)) as pilot:
            await loaded(app, pilot)
            select(app, task)
            await pilot.press("l")
            log = app.screen.log_widget
            await until(pilot, lambda: rendered_lines(log) == [ERR_MARK + "oops"],
                        message="the marked line")
            styles = [seg.style for line in log.lines for seg in line if seg.style]
            assert not any(s.color or s.bgcolor for s in styles)  # the mark alone tells
            await pilot.press("escape", "q")

    run(body())
