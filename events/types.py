"""Event records and the schema of every known event type.

An event is immutable. The store assigns `seq`; everything else is fixed when the event is
made. `data` holds the type's own fields. A type the running code does not know (written by a
newer ghost) is still an `Event`, marked `known=False`, so it can be kept, exported and skipped.
"""

from __future__ import annotations

import time
from collections import namedtuple
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

SPAWNED = "spawned"
SPAWN_FAILED = "spawn_failed"
STOP_REQUESTED = "stop_requested"
EXITED = "exited"
KILLED = "killed"
LOST = "lost"
CLEANED = "cleaned"
# Supervision (issue 15): --after queues, restarts by hand and by policy.
QUEUED = "queued"
RESTART_SCHEDULED = "restart_scheduled"
RESTART_REQUESTED = "restart_requested"
GAVE_UP = "gave_up"
# Interactive tasks and pumped logs (issue 16). Input content is never recorded, only its size.
INPUT_SENT = "input_sent"
RESIZED = "resized"
LOG_WRITE_FAILED = "log_write_failed"

# Terminal events: after one of these a task never runs again.
ENDINGS = frozenset({EXITED, KILLED, LOST, SPAWN_FAILED})

_INT = (int,)
_STR = (str,)
_NUM = (int, float)
_BOOL = (bool,)
_LIST = (list, tuple)
_MAP = (dict,)
_OPT_INT = (int, type(None))
_OPT_STR = (str, type(None))

# type -> (current schema version, {required field: allowed python types}).
# Fields are only ever added; optional fields are not listed here.
SCHEMAS: dict[str, tuple[int, dict[str, tuple[type, ...]]]] = {
    SPAWNED: (1, {"command": _LIST, "cwd": _STR, "pid": _INT, "pgid": _INT,
                  "start_ticks": _INT, "boot_id": _STR, "log_path": _STR}),
    SPAWN_FAILED: (1, {"command": _LIST, "cwd": _STR, "error": _STR, "exit_code": _INT}),
    STOP_REQUESTED: (1, {"signal": _STR, "timeout": _NUM, "force": _BOOL}),
    EXITED: (1, {"code": _INT, "end_ns": _INT}),
    KILLED: (1, {"signal": _STR, "signum": _INT, "end_ns": _INT}),
    LOST: (1, {"reason": _STR}),
    CLEANED: (1, {"log_removed": _BOOL}),
    QUEUED: (1, {"command": _LIST, "cwd": _STR, "log_path": _STR, "boot_id": _STR,
                 "after": _LIST, "any": _BOOL}),
    RESTART_SCHEDULED: (1, {"attempt": _INT, "delay_ms": _INT, "reason": _STR, "at_ns": _INT}),
    RESTART_REQUESTED: (1, {}),
    GAVE_UP: (1, {"restarts": _INT}),
    INPUT_SENT: (1, {"bytes": _INT, "eof": _BOOL}),
    RESIZED: (1, {"cols": _INT, "rows": _INT}),
    LOG_WRITE_FAILED: (1, {"error": _STR, "errno": _INT}),
}

# Field types checked when present, whatever the event type.
OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {
    "actor": _MAP,
    "env_keys": _LIST,
    "monitor": _MAP,
    "rusage": _MAP,
    "escalated": _BOOL,
    "exit_code": _OPT_INT,
    "detail": _OPT_STR,
    # spawned/queued (issue 15); `attempt` also on ends and on a later attempt's spawn_failed
    "attempt": _INT,
    "log_offset": _INT,
    "name": _STR,
    "group": _STR,
    "key": _STR,
    "policy": _MAP,
    # spawned (issue 16): the task's stdio when ghost pumps it; `cols`/`rows` also on resized
    "input": _STR,  # none | pty | pipe
    "cols": _INT,
    "rows": _INT,
    "indexed": _BOOL,
    "log_max": _INT,
    "log_keep": _INT,
}


def current_version(event_type: str) -> int:
    return SCHEMAS[event_type][0] if event_type in SCHEMAS else 0


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})

# Named tuples rather than dataclasses: immutable, built in C by the millions on a replay, and
# `dataclasses` (with `inspect`) would add ~10 ms to every process that only records an end.
# Named "Event" so reprs read as the class users see.
_EventBase = namedtuple("Event", "type task data time_ns v seq known",  # type: ignore[name-match]
                        defaults=(_NO_FIELDS, 0, 0, 0, True))


class Event(_EventBase):
    """One fact in the log. `seq` is 0 until the store has assigned it.

    Fields: type, task, data (the type's own fields), time_ns (wall clock), v (schema
    version), seq, known (False for a type or version newer than this code).
    """

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:
        return self.data.get(name, default)

    def with_seq(self, seq: int) -> Event:
        # tuple.__new__ directly: namedtuple's _replace is Python code, ~1 us of an append
        return tuple.__new__(Event, (*self[:5], seq, self[6]))


class Corrupt(namedtuple("Corrupt", "seq reason raw", defaults=(b"",))):
    """A value in the log that could not be decoded; reported by its sequence number."""

    __slots__ = ()


def make(event_type: str, task: str, **fields: Any) -> Event:
    """Build a new event of a known type, stamped with the current wall-clock time."""
    if event_type not in SCHEMAS:
        raise ValueError(f"unknown event type {event_type!r}")
    version, required = SCHEMAS[event_type]
    missing = [name for name in required if name not in fields]
    if missing:
        raise ValueError(f"{event_type} event is missing {', '.join(missing)}")
    return Event(event_type, task, fields, time.time_ns(), version)


def check_fields(event_type: str, data: Mapping[str, Any]) -> str | None:
    """Return why `data` does not fit the type's schema, or None when it fits."""
    _, required = SCHEMAS[event_type]
    for name, types in required.items():
        if name not in data:
            return f"{event_type}: missing field {name!r}"
        value = data[name]
        if not _fits(value, types):
            return f"{event_type}: field {name!r} has type {type(value).__name__}"
    for name, types in OPTIONAL_FIELDS.items():
        if name in data and not _fits(data[name], types):
            return f"{event_type}: field {name!r} has type {type(data[name]).__name__}"
    return None


def fields_problem(event_type: str, data: Mapping[str, Any]) -> str | None:
    """`check_fields`, remembered per shape of `data`: its verdict depends only on the field
    names and the classes of their values, and the events of one type nearly always share one
    shape. Every append and every decode asks; this costs ~0.4 us instead of ~1-2."""
    schema = SCHEMAS[event_type]
    shape = (event_type, *data, *map(type, data.values()))
    known = _SHAPES.get(shape)
    if known is None or known[0] is not schema:  # new shape, or the schema was replaced
        if len(_SHAPES) >= _MAX_SHAPES:
            _SHAPES.clear()
        known = _SHAPES[shape] = (schema, check_fields(event_type, data))
    return known[1]


# (type, field names..., value classes...) -> (schema, problem or None), for `fields_problem`.
_SHAPES: dict[tuple[Any, ...], tuple[Any, str | None]] = {}
_MAX_SHAPES = 4096  # a log of endlessly varied shapes must not grow it without bound


def _fits(value: Any, types: tuple[type, ...]) -> bool:
    # bool is a subclass of int, but True is not a pid, an exit code or a timeout.
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)
