"""Shaping output through the index without processes: line stamps across chunk boundaries, and
a follower's cursor (log -f --stream/--timestamps) across a --log-max rotation."""

from __future__ import annotations

import os
from pathlib import Path

from ghost.actions.logread import Cursor, Options
from ghost.process.pump import STDERR, STDOUT, LogWriter
from ghost.state import logindex


def test_a_stamp_goes_before_each_line_even_across_chunks():
    stamper = logindex.Stamper()
    ns = 1_796_000_000_123_000_000
    prefix = logindex.stamp(ns)
    out = stamper(b"par", ns) + stamper(b"tial\nwhole\nnext", ns) + stamper(b"\n", ns)
    assert out == prefix + b"partial\n" + prefix + b"whole\n" + prefix + b"next\n"
    assert prefix.endswith(b".123" + prefix[-7:]) and prefix[10:11] == b"T"


def test_the_cursor_follows_streams_across_a_rotation(tmp_path):
    path = str(tmp_path / "task.log")
    writer = LogWriter(path, log_max=12, keep=5)
    writer.write(b"out-1\n", STDOUT)
    writer.write(b"err-1\n", STDERR)  # the first piece is full: it rotates on the next write
    cursor = Cursor(path, Options(stream="stderr", timestamps=False))
    first = Path(path).read_bytes()  # what `log -f` reads from its open file
    writer.write(b"err-2\n", STDERR)
    writer.write(b"out-2\n", STDOUT)
    second = Path(path).read_bytes()  # after the rotation: the new file, from offset 0
    shaped = cursor.shape(first, 0) + cursor.shape(second, 0)
    cursor.close()
    writer.close()
    assert (first, second) == (b"out-1\nerr-1\n", b"err-2\nout-2\n")
    assert Path(f"{path}.1").read_bytes() == first
    assert shaped == b"err-1\nerr-2\n"


def test_other_pieces_lists_index_and_rotations(tmp_path):
    path = str(tmp_path / "task.log")
    writer = LogWriter(path, log_max=4, keep=2)
    writer.write(b"0123456789", STDOUT)
    writer.close()
    names = sorted(os.path.basename(p) for p in logindex.other_pieces(path))
    assert names == ["task.idx", "task.idx.1", "task.idx.2", "task.log.1", "task.log.2"]
