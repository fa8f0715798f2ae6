"""The task view: a pure fold of the event log into one record per visible task.

`apply(task, event)` is the whole projection. The incremental view kept in the store, the full
rebuild and time travel (`list --at`) all call this same function, in sequence order; wall-clock
times inside events are data, never used for ordering.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from events.types import (
    CLEANED,
    EXITED,
    GAVE_UP,
    KILLED,
    LOG_WRITE_FAILED,
    LOST,
    QUEUED,
    RESIZED,
    RESTART_REQUESTED,
    RESTART_SCHEDULED,
    SPAWN_FAILED,
    SPAWNED,
    STOP_REQUESTED,
    Corrupt,
    Event,
)

RUNNING = "running"
EXITED_STATUS = "exited"
KILLED_STATUS = "killed"
UNKNOWN = "unknown"
QUEUED_STATUS = "queued"  # waiting for its --after dependencies; no process yet
RESTARTING = "restarting"  # between attempts: an end is recorded, the next start is pending
STATUSES = (RUNNING, EXITED_STATUS, KILLED_STATUS, UNKNOWN, QUEUED_STATUS, RESTARTING)
ENDED = frozenset({EXITED_STATUS, KILLED_STATUS, UNKNOWN})
# Statuses a monitor still answers for: a reader that finds it dead records `lost`.
LIVE = frozenset({RUNNING, QUEUED_STATUS, RESTARTING})
DEFAULT_GROUP = "default"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Task(NamedTuple):
    """One task as the log tells it. A named tuple: immutable, and light to import for the
    monitor's end-of-task path (dataclasses would pull in `inspect`)."""

    id: str
    command: tuple[str, ...]
    cwd: str
    pid: int
    pgid: int
    start_ticks: int
    boot_id: str
    log_path: str
    started_ns: int
    status: str = RUNNING
    monitor_pid: int = 0
    monitor_start_ticks: int = 0
    env_keys: tuple[str, ...] = ()
    actor: Mapping[str, Any] = _EMPTY
    finished_ns: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    rusage: Mapping[str, Any] = _EMPTY
    lost_reason: str | None = None
    stop: Mapping[str, Any] = _EMPTY
    spawned_seq: int = 0
    last_seq: int = 0
    # Supervision (issue 15). Appended after the original fields so stored rows still read.
    name: str = ""
    group: str = DEFAULT_GROUP
    key: str = ""
    attempt: int = 1
    policy: Mapping[str, Any] = _EMPTY
    log_offset: int = 0  # where this attempt's output starts in the log file
    last_status: str = ""  # while restarting: how the last attempt ended
    next_restart_ns: int | None = None
    restart_reason: str = ""
    gave_up: int | None = None  # restarts made when the policy gave up
    after: tuple[str, ...] = ()
    after_any: bool = False
    created_seq: int = 0  # the task's first event (stays put across attempts)
    # Interactive tasks and pumped logs (issue 16): input (none|pty|pipe), cols, rows, indexed,
    # log_max, log_keep; and why the log could not be written, once it could not.
    io: Mapping[str, Any] = _EMPTY
    log_error: str | None = None

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    @property
    def live(self) -> bool:
        """Running, queued or between attempts: its monitor has not finished with it."""
        return self.status in LIVE

    @property
    def restarts(self) -> int:
        return self.attempt - 1

    def to_row(self) -> dict[str, Any]:
        row = self._asdict()
        row["command"] = list(self.command)
        row["env_keys"] = list(self.env_keys)
        row["actor"] = dict(self.actor)
        row["rusage"] = dict(self.rusage)
        row["stop"] = dict(self.stop)
        row["policy"] = dict(self.policy)
        row["after"] = list(self.after)
        row["io"] = dict(self.io)
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Task:
        # Positional, not cls(**values): `list` reads one row per task (~4 us saved on each).
        get = row.get
        values = [get(name, default) for name, default in _ROW_DEFAULTS]
        if _MISSING in values:
            missing = [name for (name, _), value in zip(_ROW_DEFAULTS, values, strict=True)
                       if value is _MISSING]
            raise TypeError(f"task row without {', '.join(missing)}")
        values[_COMMAND] = tuple(values[_COMMAND])
        values[_ENV_KEYS] = tuple(values[_ENV_KEYS])
        values[_AFTER] = tuple(values[_AFTER])
        # A damaged or foreign row must fail here, as one "damaged" error, not later as a
        # TypeError deep in rendering. Rows share a few shapes (which optional fields are
        # None), so a shape checked once is remembered: the common case is one tuple of types.
        shape = tuple(map(type, values))
        if shape not in _GOOD_SHAPES:
            if not all(map(isinstance, values, _ROW_TYPES)):
                wrong = [name for name, value, kinds in zip(Task._fields, values, _ROW_TYPES,
                                                            strict=True)
                         if not isinstance(value, kinds)]
                raise TypeError(f"task row with a field of the wrong type: {', '.join(wrong)}")
            if len(_GOOD_SHAPES) < 4096:
                _GOOD_SHAPES.add(shape)
        return tuple.__new__(cls, values)


_INDEX = {name: i for i, name in enumerate(Task._fields)}
_COMMAND, _ENV_KEYS, _AFTER = _INDEX["command"], _INDEX["env_keys"], _INDEX["after"]
_MISSING = object()
_TUPLES = ("command", "env_keys", "after")
# The types a stored row's fields may have, in field order (from the annotations above).
_KINDS: dict[str, tuple[type, ...]] = {
    "int": (int,), "int | None": (int, type(None)), "str": (str,),
    "str | None": (str, type(None)), "bool": (bool,), "tuple[str, ...]": (tuple,),
    "Mapping[str, Any]": (dict, MappingProxyType)}
_GOOD_SHAPES: set[tuple[type, ...]] = set()
_ROW_TYPES = tuple(_KINDS[str(getattr(kind, "__forward_arg__", kind))]
                   for kind in Task.__annotations__.values())
# (field, default) in field order; a row without command or env_keys reads them as empty.
_ROW_DEFAULTS = tuple(
    (name, () if name in _TUPLES else Task._field_defaults.get(name, _MISSING))
    for name in Task._fields)


def _updated(task: Task, **changes: Any) -> Task:
    """`task._replace(**changes)` at half the cost: namedtuple's own walks all 22 fields in
    Python, and a replay makes one per state change (~0.5 us saved each, measured)."""
    values = list(task)
    for name, value in changes.items():
        values[_INDEX[name]] = value
    return tuple.__new__(Task, values)


def _identity(event: Event) -> dict[str, Any]:
    """What a `spawned` or `queued` event says about who the task is (name, group, policy)."""
    return {"name": str(event.get("name") or ""),
            "group": str(event.get("group") or DEFAULT_GROUP),
            "key": str(event.get("key") or ""),
            "policy": dict(event.get("policy") or {}),
            "env_keys": tuple(str(k) for k in event.get("env_keys") or ()),
            "actor": dict(event.get("actor") or {}),
            "io": {name: event.data[name] for name in _IO_FIELDS if name in event.data}}


_IO_FIELDS = ("input", "cols", "rows", "indexed", "log_max", "log_keep")


def _spawned(event: Event, created_seq: int = 0) -> Task:
    monitor = event.get("monitor") or {}
    return Task(
        id=event.task,
        command=tuple(str(a) for a in event.data["command"]),
        cwd=event.data["cwd"],
        pid=event.data["pid"],
        pgid=event.data["pgid"],
        start_ticks=event.data["start_ticks"],
        boot_id=event.data["boot_id"],
        log_path=event.data["log_path"],
        started_ns=event.time_ns,
        monitor_pid=int(monitor.get("pid", 0)),
        monitor_start_ticks=int(monitor.get("start_ticks", 0)),
        spawned_seq=event.seq,
        last_seq=event.seq,
        attempt=_int(event.get("attempt"), 1),
        log_offset=_int(event.get("log_offset"), 0),
        created_seq=created_seq or event.seq,
        **_identity(event),
    )


def _queued(event: Event) -> Task:
    monitor = event.get("monitor") or {}
    return Task(
        id=event.task, command=tuple(str(a) for a in event.data["command"]),
        cwd=event.data["cwd"], pid=0, pgid=0, start_ticks=0, boot_id=event.data["boot_id"],
        log_path=event.data["log_path"], started_ns=event.time_ns, status=QUEUED_STATUS,
        monitor_pid=int(monitor.get("pid", 0)),
        monitor_start_ticks=int(monitor.get("start_ticks", 0)),
        spawned_seq=event.seq, last_seq=event.seq, created_seq=event.seq,
        after=tuple(str(a) for a in event.data["after"]), after_any=bool(event.data["any"]),
        **_identity(event))


def _int(value: Any, default: int) -> int:
    return value if type(value) is int else default


def _next_attempt(task: Task, event: Event) -> Task:
    """`spawned` for a task already in the view: a queued task starts, or the next attempt."""
    if task.status == QUEUED_STATUS:
        return _spawned(event, task.created_seq)
    if task.status == RUNNING or _int(event.get("attempt"), 1) != task.attempt + 1:
        return task  # a duplicate, or not the attempt that comes next
    return _spawned(event, task.created_seq)


def _ended(task: Task, event: Event) -> Task:
    # The monitor's exact record wins over an earlier reconciliation guess ("unknown"),
    # but never over another exact record, nor over a later attempt's life.
    if task.status not in (RUNNING, UNKNOWN):
        return task
    if _int(event.get("attempt"), task.attempt) != task.attempt:
        return task
    exited = event.type == EXITED
    return _updated(
        task,
        status=EXITED_STATUS if exited else KILLED_STATUS,
        exit_code=event.data["code"] if exited else None,
        signal=None if exited else event.data["signal"],
        finished_ns=event.data["end_ns"],
        rusage=dict(event.get("rusage") or {}),
        lost_reason=None,
        last_seq=event.seq,
    )


def _stop(task: Task, event: Event) -> Task:
    stop = {"signal": event.data["signal"], "force": event.data["force"],
            "timeout": event.data["timeout"], "time_ns": event.time_ns,
            "actor": dict(event.get("actor") or {})}
    if task.status == RESTARTING:  # stop wins over a pending restart: back to the last end
        return _updated(task, status=task.last_status or UNKNOWN, next_restart_ns=None,
                        stop=stop, last_seq=event.seq)
    if task.status in ENDED and task.policy:  # ended, its policy not yet applied: it won't be
        return _updated(task, stop=stop, last_seq=event.seq)
    if not task.running:
        return task
    return _updated(task, stop=stop, last_seq=event.seq)


def _restart(task: Task, event: Event) -> Task:
    """`restart_scheduled` (by the monitor's policy) or `restart_requested` (by hand)."""
    # The process that will make the next attempt answers for the task meanwhile.
    monitor = event.get("monitor") or {}
    watcher = {"monitor_pid": int(monitor.get("pid", 0)),
               "monitor_start_ticks": int(monitor.get("start_ticks", 0))} if monitor else {}
    if task.status == RESTARTING:
        if event.type == RESTART_SCHEDULED:
            return task
        return _updated(task, next_restart_ns=event.time_ns, restart_reason="requested",
                        last_seq=event.seq, **watcher)
    if task.status not in ENDED:
        return task
    if event.type == RESTART_SCHEDULED:
        at, reason = _int(event.data["at_ns"], event.time_ns), str(event.data["reason"])
    else:
        at, reason = event.time_ns, "requested"
    return _updated(task, status=RESTARTING, last_status=task.status, next_restart_ns=at,
                    restart_reason=reason, gave_up=None, stop=_EMPTY, last_seq=event.seq,
                    **watcher)


def _start_failed(task: Task, event: Event) -> Task | None:
    """`spawn_failed`: a task that never ran leaves the view; a later attempt that could not
    be started ends the task with the failure's exit code and reason."""
    if task.status == QUEUED_STATUS or task.attempt == 1 and task.status != RESTARTING:
        return None
    return _updated(task, status=EXITED_STATUS, exit_code=event.data["exit_code"],
                    signal=None, lost_reason=str(event.data["error"]),
                    finished_ns=event.time_ns, next_restart_ns=None, last_seq=event.seq)


def apply(task: Task | None, event: Event) -> Task | None:
    """The next state of one task after `event` (None: the task is not in the view)."""
    kind = event.type
    if kind == SPAWNED:
        return _spawned(event) if task is None else _next_attempt(task, event)
    if kind == QUEUED:
        return _queued(event) if task is None else task
    if task is None:
        return None
    if kind == CLEANED:
        return None
    if kind == SPAWN_FAILED:
        return _start_failed(task, event)
    if kind == STOP_REQUESTED:
        return _stop(task, event)
    if kind in (EXITED, KILLED):
        return _ended(task, event)
    if kind in (RESTART_SCHEDULED, RESTART_REQUESTED):
        return _restart(task, event)
    if kind == GAVE_UP:
        if task.status not in ENDED:
            return task
        return _updated(task, gave_up=_int(event.data["restarts"], task.restarts),
                        last_seq=event.seq)
    if kind == LOST:
        if not task.live:
            return task
        # Between attempts the last attempt's exit code stays; only the restart is lost.
        finished = task.finished_ns if task.status == RESTARTING else event.time_ns
        return _updated(task, status=UNKNOWN, lost_reason=event.data["reason"],
                        finished_ns=finished, next_restart_ns=None, last_seq=event.seq)
    if kind == RESIZED:
        return _updated(task, io={**task.io, "cols": event.data["cols"],
                                  "rows": event.data["rows"]}, last_seq=event.seq)
    if kind == LOG_WRITE_FAILED:
        return _updated(task, log_error=task.log_error or event.data["error"],
                        last_seq=event.seq)
    return task  # a type this projection does not use


def fold(tasks: dict[str, Task], event: Event | Corrupt) -> dict[str, Task]:
    """Apply one event to the whole view (in place, and returned for reduce-style use)."""
    if not isinstance(event, Event) or not event.known:
        return tasks  # corrupt and unknown events are skipped, never fatal
    new = apply(tasks.get(event.task), event)
    if new is None:
        tasks.pop(event.task, None)
    else:
        tasks[event.task] = new
    return tasks


def rebuild(events: Iterable[Event | Corrupt]) -> dict[str, Task]:
    tasks: dict[str, Task] = {}
    # Folding makes no reference cycles, but the cyclic GC would walk every live Task again and
    # again as the view grows: pausing it makes a full replay ~25 % faster (measured).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for event in events:
            fold(tasks, event)
    finally:
        if collecting:
            gc.enable()
    return tasks
