"""Type checking as part of the suite: `events/` and `projections/` are clean under
`mypy --strict`, `ghost/` at the strictness configured in pyproject.toml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")


def _mypy(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MYPY_FORCE_COLOR": "0"})


def test_events_and_projections_are_strictly_typed(tmp_path: Path) -> None:
    done = _mypy("--strict", "events", "projections", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ghost_type_checks(tmp_path: Path) -> None:
    done = _mypy("ghost", cache=tmp_path / "cache")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_is_clean() -> None:
    pytest.importorskip("ruff", reason="ruff is in the dev extra")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
