"""What the task table shows: rows, filters, search and sort, as plain data (no Textual here).

Kept free of the UI so the same choices can be tested directly and the widgets stay thin. Every
string that came from a task (its command, directory, name) passes through `visible`, so a
command line holding an escape sequence can never reach the real terminal as one.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from ghost.text import printable
from projections.tasks import Task

FILTERS = ("all", "running", "exited", "killed", "unknown")
SHORT_ID = 8

# Columns whose data the task record may or may not carry yet (names and groups are being
# added by other work): shown only when the record has the field.
OPTIONAL = ("name", "group")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def visible(text: str) -> str:
    """`text` with every control character shown as an escape (`\\x1b`), valid UTF-8."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", printable(text))


def clip(text: str, width: int = 80) -> str:
    """A table cell stays readable; the details screen (Enter) has the whole value."""
    return text if len(text) <= width else text[:width - 1] + "…"


def command_line(command: Sequence[str]) -> str:
    return visible(shlex.join(command))


def field(task: Task, name: str) -> Any:
    """A field that newer task records have (name, group, ...), or None."""
    return getattr(task, name, None)


def status_text(task: Task) -> str:
    if task.status == "exited":
        return f"exited {task.exit_code}"
    if task.status == "killed":
        return f"killed {task.signal or ''}".rstrip()
    return task.status


def local_time(ns: int | None, short: bool = False) -> str:
    if not ns:
        return ""
    fmt = "%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S"  # short: the table, at 80 columns
    return time.strftime(fmt, time.localtime(ns / 1e9))


def duration(ns: int) -> str:
    seconds = max(0, ns) / 1e9
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days}d{hours:02d}h"
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"


def elapsed_ns(task: Task, now_ns: int) -> int:
    end = task.finished_ns if task.finished_ns else now_ns
    return max(0, end - task.started_ns)


class Column(NamedTuple):
    key: str
    label: str
    cell: Callable[[Task, int], str]
    sort: Callable[[Task, int], Any]


def _optional_cell(name: str) -> Callable[[Task, int], str]:
    return lambda task, _now: visible(str(field(task, name) or ""))


def _optional_key(name: str) -> Callable[[Task, int], Any]:
    return lambda task, _now: str(field(task, name) or "")


def _columns() -> list[Column]:
    cols = [Column("id", "ID", lambda t, _: t.id[:SHORT_ID], lambda t, _: t.id)]
    for name in OPTIONAL:
        if name in Task._fields:
            cols.append(Column(name, name.capitalize(), _optional_cell(name), _optional_key(name)))
    cols += [
        Column("pid", "PID", lambda t, _: str(t.pid), lambda t, _: t.pid),
        Column("status", "Status", lambda t, _: status_text(t),
               lambda t, _: (t.status, t.exit_code or 0)),
        Column("started", "Started", lambda t, _: local_time(t.started_ns, short=True),
               lambda t, _: t.spawned_seq),
        Column("duration", "Duration", lambda t, now: duration(elapsed_ns(t, now)),
               lambda t, now: elapsed_ns(t, now)),
        Column("command", "Command", lambda t, _: clip(command_line(t.command)),
               lambda t, _: t.command),
        Column("cwd", "Directory", lambda t, _: clip(visible(t.cwd)), lambda t, _: t.cwd),
    ]
    return cols


COLUMNS = _columns()
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
_BY_KEY = {c.key: c for c in COLUMNS}


def row(task: Task, now_ns: int) -> tuple[str, ...]:
    return tuple(c.cell(task, now_ns) for c in COLUMNS)


def matches(task: Task, needle: str) -> bool:
    """Case-insensitive search over the id, the command line and the name (when there is one)."""
    if not needle:
        return True
    needle = needle.lower()
    hay = [task.id, shlex.join(task.command), str(field(task, "name") or "")]
    return any(needle in h.lower() for h in hay)


def select(tasks: Iterable[Task], status: str = "all", needle: str = "",
           sort: str = "started", reverse: bool = True, now_ns: int = 0) -> list[Task]:
    """The tasks the table shows, in order: newest first unless another sort was chosen."""
    chosen = [t for t in tasks if (status == "all" or t.status == status) and matches(t, needle)]
    key = _BY_KEY[sort].sort
    return sorted(chosen, key=lambda t: (key(t, now_ns), t.spawned_seq), reverse=reverse)


def counts(tasks: Iterable[Task]) -> dict[str, int]:
    out = dict.fromkeys(FILTERS, 0)
    for task in tasks:
        out["all"] += 1
        out[task.status] = out.get(task.status, 0) + 1
    return out


def next_filter(current: str, step: int = 1) -> str:
    return FILTERS[(FILTERS.index(current) + step) % len(FILTERS)]
