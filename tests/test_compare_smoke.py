"""bench/compare.py runs end to end (ghost only when no peer is installed) and prints tables.

Peers are not installed in CI: the script must skip them with a note and still measure ghost.
No figure is asserted: only that the run works, cleans up, and reports what it measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

COMPARE = Path(__file__).resolve().parent.parent / "bench" / "compare.py"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHOST_")}
    env["TMPDIR"] = str(tmp_path)  # the script's scratch dir lands here
    return env


def test_quick_cold_start_prints_a_table_and_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "compare.json"
    done = subprocess.run(
        [sys.executable, str(COMPARE), "--quick", "--only", "cold", "--out", str(out)],
        env=_env(tmp_path), capture_output=True, timeout=300)
    stdout = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "### CLI cold start (ms)" in stdout
    assert "| tool | command | median (min–max) | ghost ÷ this |" in stdout
    ghost_rows = [ln for ln in stdout.splitlines() if ln.startswith("| ghost | `ghost --version`")]
    assert len(ghost_rows) == 1, stdout
    assert "| floor | `true` |" in stdout
    data = json.loads(out.read_text())
    samples = data["results"]["cold"]["samples"]
    assert len(samples["ghost --version"]) == 3  # --quick: three counted rounds
    assert all(ms > 0 for ms in samples["ghost --version"])
    for name, reason in data["meta"]["skipped"].items():
        assert f"note: skipping {name}: {reason}" in stdout
    # its scratch dir (GHOST_DATA_DIR, daemons' homes) is gone
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("ghost-compare-")]


def test_unknown_metric_is_refused_with_its_name(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(COMPARE), "--only", "speed"],
                          env=_env(tmp_path), capture_output=True, timeout=60)
    assert done.returncode == 2
    assert "unknown metric speed" in done.stderr.decode()
