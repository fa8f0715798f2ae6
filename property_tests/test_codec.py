"""Properties of the event codec: exact round trips, opaque unknown events, never a crash."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from events import codec
from events.types import OPTIONAL_FIELDS, SCHEMAS, Corrupt, Event, check_fields, fields_problem

INT64 = st.integers(min_value=-(2**63), max_value=2**64 - 1)
SCALARS = st.one_of(
    st.none(), st.booleans(), INT64, st.floats(allow_nan=False), st.text(max_size=20),
    st.binary(max_size=20),
)
PLAIN = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

_BY_TYPE: dict[type, st.SearchStrategy[Any]] = {
    int: INT64,
    str: st.text(max_size=40),
    float: st.floats(allow_nan=False),
    bool: st.booleans(),
    list: st.lists(st.text(max_size=20), max_size=6),
    tuple: st.lists(st.text(max_size=20), max_size=6),  # msgpack has arrays only: lists
    dict: st.dictionaries(st.text(max_size=10), SCALARS, max_size=4),
    type(None): st.none(),
}
# One value of each kind msgpack can carry, to draw values of the wrong type from.
_ANY_KIND: dict[type, st.SearchStrategy[Any]] = {
    int: INT64, str: st.text(max_size=10), float: st.floats(allow_nan=False),
    bool: st.booleans(), list: st.lists(SCALARS, max_size=3),
    dict: st.dictionaries(st.text(max_size=5), SCALARS, max_size=3), type(None): st.none(),
    bytes: st.binary(max_size=10),
}


def value_of(types: tuple[type, ...]) -> st.SearchStrategy[Any]:
    return st.one_of(*(_BY_TYPE[t] for t in types))


def wrong_value_for(types: tuple[type, ...]) -> st.SearchStrategy[Any]:
    allowed = set(types) | ({list} if tuple in types else set())
    return st.one_of(*(s for t, s in _ANY_KIND.items() if t not in allowed))


def fields_of(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid fields of a known type: every required field, some optional ones, some extras."""
    _, required = SCHEMAS[event_type]
    known = set(required) | set(OPTIONAL_FIELDS)
    extras = st.dictionaries(st.text(max_size=10).filter(lambda k: k not in known), PLAIN,
                             max_size=3)
    # A required field that is also a checked optional one must fit both type lists.
    both = {name: tuple(t for t in types if t in OPTIONAL_FIELDS.get(name, types))
            for name, types in required.items()}
    listed = st.fixed_dictionaries(
        {name: value_of(types) for name, types in both.items()},
        optional={name: value_of(types) for name, types in OPTIONAL_FIELDS.items()
                  if name not in required},
    )
    return st.tuples(extras, listed).map(lambda pair: {**pair[0], **pair[1]})


@st.composite
def known_events(draw: st.DrawFn) -> Event:
    event_type = draw(st.sampled_from(sorted(SCHEMAS)))
    return Event(event_type, draw(st.text(max_size=30)), draw(fields_of(event_type)),
                 draw(INT64), SCHEMAS[event_type][0])


@st.composite
def unknown_events(draw: st.DrawFn) -> Event:
    """Events this code cannot interpret: an unknown type, or a known type from the future."""
    if draw(st.booleans()):
        event_type = draw(st.text(max_size=20).filter(lambda t: t not in SCHEMAS))
        version = draw(st.integers(-5, 2**31))
    else:
        event_type = draw(st.sampled_from(sorted(SCHEMAS)))
        version = draw(st.integers(SCHEMAS[event_type][0] + 1, 2**63 - 1))
    data = draw(st.dictionaries(st.text(max_size=10), PLAIN, max_size=5))
    return Event(event_type, draw(st.text(max_size=30)), data, draw(INT64), version,
                 known=False)


SEQS = st.integers(min_value=1, max_value=2**64 - 1)


@given(known_events(), SEQS)
def test_every_known_event_round_trips_exactly(event: Event, seq: int) -> None:
    decoded = codec.decode(seq, codec.encode(event))
    assert decoded == event.with_seq(seq)
    assert decoded.known


@given(unknown_events(), SEQS)
def test_unknown_and_newer_events_are_kept_opaque_and_re_encode_byte_for_byte(
        event: Event, seq: int) -> None:
    raw = codec.encode(event)
    decoded = codec.decode(seq, raw)
    assert isinstance(decoded, Event)
    assert decoded == event.with_seq(seq)
    assert not decoded.known
    assert codec.encode(decoded) == raw  # a newer ghost reads back exactly what it wrote


@given(st.binary(max_size=300), SEQS)
def test_arbitrary_bytes_never_raise(raw: bytes, seq: int) -> None:
    result = codec.decode(seq, raw)
    assert isinstance(result, Event | Corrupt)
    assert result.seq == seq
    if isinstance(result, Corrupt):
        assert result.raw == raw and result.reason


@given(st.one_of(known_events(), unknown_events()), st.data(), SEQS)
def test_single_byte_mutations_never_raise(event: Event, data: st.DataObject, seq: int) -> None:
    raw = bytearray(codec.encode(event))
    index = data.draw(st.integers(0, len(raw) - 1), label="index")
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]), label="byte")
    raw[index] = byte
    result = codec.decode(seq, bytes(raw))
    assert isinstance(result, Event | Corrupt)
    assert result.seq == seq


@given(st.one_of(known_events(), unknown_events()), st.data(), SEQS)
def test_truncated_or_extended_values_are_corrupt(event: Event, data: st.DataObject,
                                                  seq: int) -> None:
    raw = codec.encode(event)
    cut = data.draw(st.integers(0, len(raw) - 1), label="cut")
    truncated = codec.decode(seq, raw[:cut])
    assert isinstance(truncated, Corrupt) and truncated.seq == seq
    extended = codec.decode(seq, raw + data.draw(st.binary(min_size=1, max_size=8)))
    assert isinstance(extended, Corrupt) and extended.seq == seq


@given(known_events().filter(lambda e: bool(SCHEMAS[e.type][1])), st.data(), SEQS)
def test_a_required_field_of_the_wrong_type_is_corrupt(event: Event, data: st.DataObject,
                                                       seq: int) -> None:
    _, required = SCHEMAS[event.type]  # (types without required fields, e.g. restart_requested,
    # are covered by the optional-field test below)
    name = data.draw(st.sampled_from(sorted(required)), label="field")
    bad = data.draw(wrong_value_for(required[name]), label="value")
    broken = Event(event.type, event.task, {**event.data, name: bad}, event.time_ns, event.v)
    result = codec.decode(seq, codec.encode(broken))
    assert isinstance(result, Corrupt), result
    assert result.seq == seq and repr(name) in result.reason


@given(known_events(), st.data(), SEQS)
def test_an_optional_field_of_the_wrong_type_is_corrupt(event: Event, data: st.DataObject,
                                                        seq: int) -> None:
    name = data.draw(st.sampled_from(sorted(OPTIONAL_FIELDS)), label="field")
    bad = data.draw(wrong_value_for(OPTIONAL_FIELDS[name]), label="value")
    broken = Event(event.type, event.task, {**event.data, name: bad}, event.time_ns, event.v)
    result = codec.decode(seq, codec.encode(broken))
    assert isinstance(result, Corrupt) and result.seq == seq


@given(known_events().filter(lambda e: bool(SCHEMAS[e.type][1])), st.data(), SEQS)
def test_a_missing_required_field_is_corrupt(event: Event, data: st.DataObject,
                                             seq: int) -> None:
    _, required = SCHEMAS[event.type]
    name = data.draw(st.sampled_from(sorted(required)), label="field")
    fields = {k: v for k, v in event.data.items() if k != name}
    result = codec.decode(seq, codec.encode(Event(event.type, event.task, fields,
                                                  event.time_ns, event.v)))
    assert isinstance(result, Corrupt) and result.seq == seq


HEADER = {"t": str, "k": str, "ts": int, "v": int, "d": dict}


@given(known_events(), st.data(), SEQS)
def test_a_malformed_header_is_corrupt(event: Event, data: st.DataObject, seq: int) -> None:
    wire = msgpack.unpackb(codec.encode(event), raw=False)
    key = data.draw(st.sampled_from(sorted(HEADER)), label="key")
    if data.draw(st.booleans(), label="drop"):
        del wire[key]
    else:
        wire[key] = data.draw(wrong_value_for((HEADER[key],)), label="value")
    result = codec.decode(seq, msgpack.packb(wire, use_bin_type=True))
    assert isinstance(result, Corrupt) and result.seq == seq


@given(st.one_of(SCALARS, st.lists(SCALARS, max_size=3)), SEQS)
def test_a_value_that_is_not_a_map_is_corrupt(value: Any, seq: int) -> None:
    result = codec.decode(seq, msgpack.packb(value, use_bin_type=True))
    assert isinstance(result, Corrupt) and result.seq == seq


@given(st.sampled_from(sorted(SCHEMAS)), st.integers(-3, 0), SEQS)
def test_an_old_version_without_an_upcaster_is_corrupt(event_type: str, version: int,
                                                       seq: int) -> None:
    raw = codec.encode(Event(event_type, "t", {}, 1, version))
    result = codec.decode(seq, raw)
    assert isinstance(result, Corrupt) and "upcast" in result.reason


# -- upcasting ----------------------------------------------------------------------------

SYNTHETIC = "synthetic_for_upcast_tests"


def _v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 had `secs` (float); v2 has `millis` (int) and a `unit` note."""
    out = {k: v for k, v in data.items() if k != "secs"}
    out["millis"] = round(data["secs"] * 1000)
    out["unit"] = "ms"
    return out


@contextlib.contextmanager
def synthetic_type(upcaster: codec.Upcaster = _v1_to_v2) -> Iterator[None]:
    """A type at version 2 with a v1 -> v2 upcaster, removed again afterwards."""
    assert SYNTHETIC not in SCHEMAS
    SCHEMAS[SYNTHETIC] = (2, {"millis": (int,), "unit": (str,)})
    codec.UPCASTERS[(SYNTHETIC, 1)] = upcaster
    try:
        yield
    finally:
        del SCHEMAS[SYNTHETIC]
        del codec.UPCASTERS[(SYNTHETIC, 1)]


@given(st.floats(min_value=-1e9, max_value=1e9), st.text(max_size=20), SEQS)
def test_old_versions_are_upcast_on_read_and_current_ones_left_alone(
        secs: float, task: str, seq: int) -> None:
    with synthetic_type():
        old = codec.encode(Event(SYNTHETIC, task, {"secs": secs}, 5, 1))
        upcast = codec.decode(seq, old)
        assert upcast == Event(SYNTHETIC, task, {"millis": round(secs * 1000), "unit": "ms"},
                               5, 2, seq)
        # Idempotent: re-reading the upcast (now current) event changes nothing.
        assert codec.decode(seq, codec.encode(upcast)) == upcast
        # A current-version event is never passed through the upcaster.
        current = Event(SYNTHETIC, task, {"millis": 7, "unit": "ms", "secs": secs}, 5, 2)
        assert codec.decode(seq, codec.encode(current)) == current.with_seq(seq)
    assert isinstance(codec.decode(seq, old), Event) and not codec.decode(seq, old).known


@given(st.sampled_from(["no secs", "secs is text"]), SEQS)
def test_an_upcaster_that_fails_gives_corrupt_not_a_crash(case: str, seq: int) -> None:
    data = {} if case == "no secs" else {"secs": "soon"}
    with synthetic_type():
        result = codec.decode(seq, codec.encode(Event(SYNTHETIC, "t", data, 5, 1)))
    assert isinstance(result, Corrupt) and result.seq == seq and "upcast" in result.reason


def test_an_upcaster_producing_the_wrong_shape_is_corrupt() -> None:
    with synthetic_type(lambda data: {"millis": "many"}):
        result = codec.decode(3, codec.encode(Event(SYNTHETIC, "t", {"secs": 1.0}, 5, 1)))
    assert isinstance(result, Corrupt) and result.seq == 3 and "'millis'" in result.reason


@given(st.lists(st.dictionaries(st.text(max_size=5), PLAIN, max_size=4), max_size=5))
def test_plain_value_streams_round_trip(objs: list[dict[str, Any]]) -> None:
    chunks = list(codec.pack_stream(objs))
    assert [codec.unpack(chunk) for chunk in chunks] == objs
    assert list(codec.unpack_stream(chunks)) == objs
    assert list(codec.unpack_stream([b"".join(chunks)])) == objs


class _Flag(int):
    """An int subclass, as an application might pass (IntEnum-like): the check allows it."""


@given(st.sampled_from(sorted(SCHEMAS)), st.data())
def test_remembered_field_checks_give_the_full_checks_verdict(event_type: str,
                                                              data: st.DataObject) -> None:
    """`fields_problem` remembers verdicts per shape; it must say what `check_fields` says,
    for valid fields, wrong types, missing names and int subclasses, asked once or again."""
    fields = dict(data.draw(fields_of(event_type)))
    _, required = SCHEMAS[event_type]
    change = data.draw(st.sampled_from(["none", "wrong", "missing", "subclass"]))
    name = data.draw(st.sampled_from(sorted(set(required) | set(OPTIONAL_FIELDS))))
    types = required.get(name) or OPTIONAL_FIELDS[name]
    if change == "wrong":
        fields[name] = data.draw(wrong_value_for(types))
    elif change == "missing":
        fields.pop(name, None)
    elif change == "subclass":
        fields[name] = _Flag(3)
    want = check_fields(event_type, fields)
    assert fields_problem(event_type, fields) == want
    assert fields_problem(event_type, fields) == want  # the remembered verdict
