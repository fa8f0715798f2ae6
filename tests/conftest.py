"""Every test gets its own data dir; every process a test started is killed afterwards."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from support import kill_everything_started

if TYPE_CHECKING:
    from pump_support import Driven

# A suite started in the background of a script (`cmd &`, nohup, some CI runners) inherits
# SIGINT and SIGHUP as *ignored*, and an ignored signal stays ignored across exec: every
# `ghost` and shell the tests start would then shrug off the Ctrl+C and hang-up the tests
# send on purpose. Handled (not ignored) here, exec resets them to default in each child.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
    signal.signal(signal.SIGHUP, signal.SIG_DFL)


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh GHOST_DATA_DIR (also exported, so subprocesses use it)."""
    path = str(tmp_path / "ghost-data")
    monkeypatch.setenv("GHOST_DATA_DIR", path)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    yield path
    kill_everything_started(path)


@pytest.fixture
def env(data_dir) -> dict[str, str]:
    """The environment for `ghost` subprocesses of this test."""
    return dict(os.environ)


@pytest.fixture
def drive(tmp_path) -> Iterator[Callable[..., Driven]]:
    """pump_support.start in tmp_path; what a test leaves running (it failed midway) is killed
    afterwards, by pid."""
    from pump_support import start

    started: list[Driven] = []

    def _start(command: Sequence[str], io: dict[str, Any],
               env: dict[str, str] | None = None) -> Driven:
        started.append(start(str(tmp_path), command, io, env))
        return started[-1]

    yield _start
    for driven in started:
        driven.close()
