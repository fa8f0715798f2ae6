"""What the task table shows: rows, filters, search and sort, as plain data (no Textual here).

Kept free of the UI so the same choices can be tested directly and the widgets stay thin. Every
string that came from a task (its command, directory, name) passes through `visible`, so a
command line holding an escape sequence can never reach the real terminal as one.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ghost.text import printable
from projections.tasks import Task

FILTERS = ("all", "running", "exited", "killed", "unknown")
SHORT_ID = 8

# Fields newer task records carry (names and groups, from supervision): shown when present.
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
    last = field(task, "last_status")
    if task.status == "restarting" and last:
        return f"restarting ({last})"
    return task.status


def local_time(ns: int | None, short: bool = False) -> str:
    if not ns:
        return ""
    fmt = "%m-%d %H:%M:%S" if short else "%Y-%m-%d %H:%M:%S"  # short: the table, at 80 columns
    return time.strftime(fmt, time.localtime(ns / 1e9))


def duration(ns: int, coarse: bool = False) -> str:
    """`coarse` (a running task's age): whole seconds for the first minute, then whole
    minutes. The cell then changes once a minute, and every change redraws the table."""
    seconds = max(0, ns) / 1e9
    if seconds < 60:
        return f"{int(seconds)}s" if coarse else f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours >= 24:
        days, hours = divmod(hours, 24)
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if coarse else f"{minutes}m{sec:02d}s"


def elapsed_ns(task: Task, now_ns: int) -> int:
    end = task.finished_ns if task.finished_ns else now_ns
    return max(0, end - task.started_ns)


class Ctx(NamedTuple):
    """What a row needs besides the task: the clock, and resource usage of running tasks."""

    now_ns: int
    usage: Mapping[str, Any] = {}


NO_CTX = Ctx(0)


class Column(NamedTuple):
    key: str
    label: str
    cell: Callable[[Task, Ctx], str]
    sort: Callable[[Task, Ctx], Any]


def id_cell(task: Task, _: Ctx) -> str:
    """The short id, and the name when the task has one (the S0 "id + name" column)."""
    name = field(task, "name")
    return f"{task.id[:SHORT_ID]} {visible(name)}" if name else task.id[:SHORT_ID]


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "K", "M", "G"):
        if value < 1024 or unit == "G":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return f"{value:.1f}G"


def _cpu(task: Task, ctx: Ctx) -> str:
    used = ctx.usage.get(task.id)
    return f"{used.cpu_percent:.0f}%" if used is not None else ""


def _mem(task: Task, ctx: Ctx) -> str:
    used = ctx.usage.get(task.id)
    return human_bytes(used.rss_bytes) if used is not None else ""


def _usage_key(name: str) -> Callable[[Task, Ctx], Any]:
    return lambda task, ctx: getattr(ctx.usage.get(task.id), name, -1)


def has_resources() -> bool:
    """CPU and memory columns need ghost.actions.resources (added by other work)."""
    return importlib.util.find_spec("ghost.actions.resources") is not None


def resources() -> Any:
    """ghost.actions.resources, imported by name: this surface works with or without it."""
    return importlib.import_module("ghost.actions.resources")


def columns(with_resources: bool) -> tuple[Column, ...]:
    cols = [
        Column("id", "ID", id_cell, lambda t, _: (str(field(t, "name") or ""), t.id)),
        Column("pid", "PID", lambda t, _: str(t.pid), lambda t, _: t.pid),
        Column("status", "Status", lambda t, _: status_text(t),
               lambda t, _: (t.status, t.exit_code or 0)),
        Column("started", "Started", lambda t, _: local_time(t.started_ns, short=True),
               lambda t, _: t.spawned_seq),
        Column("duration", "Duration", lambda t, c: duration(elapsed_ns(t, c.now_ns),
                                                             coarse=t.running),
               lambda t, c: elapsed_ns(t, c.now_ns)),
    ]
    if with_resources:
        cols += [Column("cpu", "CPU", _cpu, _usage_key("cpu_percent")),
                 Column("mem", "Mem", _mem, _usage_key("rss_bytes"))]
    cols += [
        Column("command", "Command", lambda t, _: clip(command_line(t.command)),
               lambda t, _: t.command),
        Column("cwd", "Directory", lambda t, _: clip(visible(t.cwd)), lambda t, _: t.cwd),
    ]
    return tuple(cols)


BASIC = columns(with_resources=False)


def row(task: Task, ctx: Ctx, cols: Sequence[Column] = BASIC) -> tuple[str, ...]:
    return tuple(c.cell(task, ctx) for c in cols)


def matches(task: Task, needle: str) -> bool:
    """Case-insensitive search over the id, the command line, the name and the group."""
    if not needle:
        return True
    needle = needle.lower()
    hay = [task.id, shlex.join(task.command), str(field(task, "name") or ""),
           str(field(task, "group") or "")]
    return any(needle in h.lower() for h in hay)


def select(tasks: Iterable[Task], status: str = "all", needle: str = "",
           sort: str = "started", reverse: bool = True, ctx: Ctx = NO_CTX,
           cols: Sequence[Column] = BASIC) -> list[Task]:
    """The tasks the table shows, in order: newest first unless another sort was chosen."""
    chosen = [t for t in tasks if (status == "all" or t.status == status) and matches(t, needle)]
    key = next(c for c in cols if c.key == sort).sort
    return sorted(chosen, key=lambda t: (key(t, ctx), t.spawned_seq), reverse=reverse)


def counts(tasks: Iterable[Task]) -> dict[str, int]:
    out = dict.fromkeys(FILTERS, 0)
    for task in tasks:
        out["all"] += 1
        out[task.status] = out.get(task.status, 0) + 1
    return out


def next_filter(current: str, step: int = 1) -> str:
    return FILTERS[(FILTERS.index(current) + step) % len(FILTERS)]
