"""Terminal injection (issue 12 item 7): stored strings reach a terminal escaped, JSON exact."""

from __future__ import annotations

import json
import os
import uuid

import pytest
from support import ghost, run_json, text, wait_ended

from events.store import Store
from events.types import EXITED, SPAWNED, make
from ghost.text import escape
from projections.checkpoint import VIEWS

HOSTILE = "true #\x1b[2J\x1b]0;PWNED\x07"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\r")


def assert_inert(output: str, rows: int | None = None) -> None:
    """No byte a terminal would act on; the hostile command shows up escaped."""
    for char in RAW:
        assert char not in output, (char, output)
    assert "\\e[2J\\e]0;PWNED\\a" in output, output


@pytest.mark.parametrize(("raw", "shown"), [
    ("plain text, é, 👩‍💻", "plain text, é, 👩‍💻"),
    ("\x1b[2J", "\\e[2J"),
    ("a\nb\r\tc\x00\x7f", "a\\nb\\r\\tc\\0\\x7f"),
    ("\x9b31m\u202eevil\u2066", "\\u009b31m\\u202eevil\\u2066"),
    ("not utf-8: \udcff\udcfe", "not utf-8: \ufffd\ufffd"),
    ("back\\slash", "back\\slash"),
])
def test_escape(raw, shown):
    assert escape(raw) == shown
    assert escape(shown) == shown  # escaping twice changes nothing


def test_list_status_history_show_escapes(data_dir, env):
    started = run_json("sh", "-c", HOSTILE, env=env)
    ended = wait_ended(started["id"], env)
    assert ended["command"] == ["sh", "-c", HOSTILE]  # JSON is exact
    listing = ghost("list", env=env)
    out, err = text(listing)
    assert listing.returncode == 0 and err == ""
    assert_inert(out)
    assert len(out.splitlines()) == 3  # header, rule, one row: nothing split it
    status = text(ghost("status", started["id"], env=env))[0]
    assert_inert(status)
    assert "Command: sh -c 'true #\\e[2J\\e]0;PWNED\\a'" in status.splitlines()
    history = text(ghost("history", started["id"], env=env))[0]
    assert_inert(history)
    assert json.loads(ghost("list", "--json", env=env).stdout)[0]["command"][2] == HOSTILE


def test_newlines_and_escapes_in_cwd_and_ids_stay_in_their_row(data_dir, env, tmp_path):
    """A hostile store (or an agent over MCP) may hold anything: ids, cwds, errors."""
    task = "evil\n\x1b[31m" + str(uuid.uuid4())
    store = Store.open(os.path.join(data_dir, "store"), create=True, views=VIEWS)
    assert store is not None
    try:
        store.append([
            make(SPAWNED, task, command=["x\ny", HOSTILE], cwd="/tmp/\x1b]0;T\x07\nrow",
                 pid=2**22 - 9, pgid=2**22 - 9, start_ticks=1, boot_id="",
                 log_path=f"/nonexistent/{task}.log"),
            make(EXITED, task, code=0, end_ns=1),
        ])
    finally:
        store.close()
    out = text(ghost("list", env=env))[0]
    assert_inert(out)
    assert len(out.splitlines()) == 3
    assert "evil\\n\\e[31m" in out and "/tmp/\\e]0;T\\a\\nrow" in out
    status = ghost("status", "evil", env=env)
    assert_inert(text(status)[0])
    # an argument quoted back in an Error: line is escaped too
    missing = ghost("status", "nope\x1b[2J\x07", env=env)
    err = text(missing)[1]
    assert missing.returncode in (1, 2) and err.count("\n") == 1
    assert "\x1b" not in err and "\x07" not in err and "nope" in err


def test_error_line_is_escaped_and_one_line(data_dir, env):
    result = ghost("run", "--cwd", "/nonexistent/\x1b]0;PWNED\x07\nx", "true", env=env)
    err = text(result)[1]
    assert result.returncode != 0
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert "\x1b" not in err and "\x07" not in err
