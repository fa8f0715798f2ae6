"""Every test gets its own data dir; every process a test started is killed afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support import kill_everything_started


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
