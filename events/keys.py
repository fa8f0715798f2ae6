"""Keys of the events database: a sequence number as 8 big-endian bytes, so LMDB's byte order
is the log's order."""

from __future__ import annotations

import struct

_SEQ = struct.Struct(">Q")


def seq_key(seq: int) -> bytes:
    return _SEQ.pack(seq)


def key_seq(key: bytes) -> int:
    seq: int = _SEQ.unpack(key)[0]
    return seq
