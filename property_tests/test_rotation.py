"""--log-max rotation never loses or duplicates a byte at a boundary.

Random chunks (sizes, streams) go through the pump's real LogWriter into a real directory with
random --log-max and --log-keep. Afterwards the rotated files, oldest first, concatenate to
exactly the end of what was written, made of whole pieces (older pieces beyond --log-keep are
gone as a whole), every piece but the current one is exactly --log-max long, and the reader
(ghost.state.logindex) returns the same bytes with every byte under the record of the chunk
that wrote it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from ghost.process.pump import STDERR, STDOUT, LogWriter, piece_path
from ghost.state import logindex

chunks = st.lists(st.tuples(st.binary(min_size=1, max_size=300), st.sampled_from([STDOUT, STDERR])),
                  min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(chunks=chunks, log_max=st.integers(min_value=1, max_value=700),
       keep=st.integers(min_value=0, max_value=4), spliced=st.booleans())
def test_rotation_keeps_whole_pieces_and_every_byte_once(chunks, log_max, keep, spliced):
    """`spliced`: the chunks come through a pipe and LogWriter.take (splice), as a --stdin or
    --timestamps task's output does; else through LogWriter.write, as a PTY's does."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "task.log")
        writer = LogWriter(path, log_max, keep)
        written = b""
        owner = []  # the stream of every byte written
        pipe_r, pipe_w = os.pipe()
        os.set_blocking(pipe_r, False)
        for data, stream in chunks:
            if spliced:
                os.write(pipe_w, data)
                while writer.take(pipe_r, stream) > 0:
                    pass
            else:
                writer.write(data, stream)
            written += data
            owner += [stream] * len(data)
        os.close(pipe_r)
        os.close(pipe_w)
        writer.close()
        assert not writer.failed

        names = [piece_path(path, n) for n in range(keep, -1, -1)]
        files = [Path(name).read_bytes() for name in names if os.path.exists(name)]
        joined = b"".join(files)
        assert written.endswith(joined)
        assert all(len(f) == log_max for f in files[:-1])
        assert (len(written) - len(joined)) % log_max == 0  # only whole pieces were dropped
        assert not os.path.exists(piece_path(path, keep + 1))

        pieces = logindex.open_pieces(path)
        try:
            start = pieces[0].start
            assert start == len(written) - len(joined)
            assert b"".join(logindex.read_range(pieces, start)) == joined
            pos = start
            for data, rec in logindex.segments(pieces, logindex.records(pieces), start):
                assert set(owner[pos:pos + len(data)]) == {rec.stream}
                pos += len(data)
            assert pos == len(written)
        finally:
            logindex.close(pieces)
        assert b"".join(logindex.read(path)) == joined
