"""The fast JSON Lines export (orjson, sliced time digits) says exactly what the stdlib one says.

`export.jsonl_stdlib` builds every record through `export.record` and the standard library's
encoder; `export.jsonl` is the hot path of `ghost events`. For any event, known or not, with
any field values msgpack can carry, both must give the same records: byte for byte when no float
is involved (floats may be spelled differently, e.g. 1e-05 and 1e-5, but must parse equal).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events import codec
from events.types import SCHEMAS, Corrupt, Event
from ghost.state import records as export

# Strings with quotes, backslashes, control characters, non-ASCII and the lone surrogates
# U+DC80..U+DCFF: how the codec hands over bytes that were not UTF-8 (no other surrogate can
# be in the log: the codec refuses to write one).
TEXT = st.text(st.one_of(st.characters(exclude_categories=("Cs",)),
                         st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)),
               max_size=12)
INTS = st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(-(2**70), 2**70))
SCALARS = st.one_of(st.none(), st.booleans(), INTS, TEXT, st.binary(max_size=8),
                    st.floats(allow_nan=False, allow_infinity=False))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(TEXT, st.integers(-5, 5)), inner,
                                            max_size=3)),
    max_leaves=8,
)
NAMES = st.one_of(TEXT, st.sampled_from(sorted(export.RESERVED | export.SECRET_FIELDS)))
TYPES = st.one_of(st.sampled_from(sorted(SCHEMAS)), TEXT)
TIMES = st.one_of(st.integers(1_600_000_000 * 10**9, 4_000_000_000 * 10**9),
                  st.integers(-(10**12), 10**12), st.just(0), st.just(10**9),
                  st.just(10**9 - 1))


@st.composite
def entries(draw: Any) -> Event | Corrupt:
    if draw(st.integers(0, 9)) == 0:
        return Corrupt(draw(st.integers(1, 10**6)), draw(TEXT))
    data = draw(st.dictionaries(NAMES, VALUES, max_size=5))
    return Event(draw(TYPES), draw(TEXT), data, draw(TIMES), draw(st.integers(0, 3)),
                 draw(st.integers(1, 2**40)), draw(st.booleans()))


def _has_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_float(v) for v in value)
    return False


@given(items=st.lists(entries(), max_size=12), store=TEXT)
def test_fast_export_matches_the_stdlib_reference(items, store):
    fast, reference = export.jsonl(items, store), export.jsonl_stdlib(items, store)
    fast_lines, reference_lines = fast.split(b"\n"), reference.split(b"\n")
    assert len(fast_lines) == len(items) + 1 and fast_lines[-1] == b""
    for item, got, want in zip(items, fast_lines, reference_lines, strict=False):
        got.decode("utf-8")  # valid UTF-8 always, surrogates or not
        assert json.loads(got) == json.loads(want)
        if not _has_float(getattr(item, "data", None)):
            assert got == want


def test_lines_from_the_store_match_the_reference_too():
    """Events as the codec hands them over (exact classes, fresh strings), not built in Python."""
    data = {"command": ["echo", "caf\u00e9 \"quoted\" \\ \t\x01", "\udcff"], "cwd": "/tmp",
            "pid": 2**63, "pgid": 12, "start_ticks": 5, "boot_id": "b", "log_path": "/l",
            "env": {"SECRET": "value"}, "seq": "moved"}
    raw = codec.encode(Event("spawned", "t-1", data, 1_792_666_383_186_715_220, 1))
    item = codec.decode(7, raw)
    assert item.__class__ is Event and item.known
    line = export.jsonl([item], "store-id")
    assert line == export.jsonl_stdlib([item], "store-id")
    record = json.loads(line)
    assert record["time"] == "2026-10-22T10:53:03.186715Z"
    assert "SECRET" not in line.decode() and "value" not in line.decode()
    assert record["fields"] == {"seq": "moved"} and record["seq"] == 7
