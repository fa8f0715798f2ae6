"""Turning tasks into the text and JSON users and scripts read. Never touches the store."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ghost.text import escape, shell_line

if TYPE_CHECKING:  # `ghost run` renders without loading the store's modules
    from ghost.actions.resources import Usage
    from ghost.actions.run import Started
    from ghost.state.listing import Row
    from ghost.state.tasks import Observed
    from projections.tasks import Task

    Shown = Task | Row  # `list` shows full records and the short rows of finished tasks

LIST_HEADERS = ("Task ID", "PID", "Status", "Started", "Command", "Directory")
# `--wide`: what running tasks use, right after the first three columns (which stay put)
WIDE_HEADERS = ("CPU", "Memory", "Uptime", "Ports")
_minutes: dict[int, str] = {}


def local_time(ns: int | None) -> str:
    if ns is None:
        return ""
    # One strftime per minute, not per row: `list` formats thousands of times. A time zone's
    # offset only ever changes on a whole minute, so the minute's text is exact.
    second = ns // 1_000_000_000
    minute = second // 60
    text = _minutes.get(minute)
    if text is None:
        text = _minutes[minute] = time.strftime("%Y-%m-%d %H:%M:", time.localtime(minute * 60))
    return f"{text}{second % 60:02d}"


def command_line(command: Sequence[str] | str) -> str:
    """The argv as a shell would read it, escaped for a terminal (an argv may hold anything).
    A short row of `list` (ghost.state.listing) carries that line already made."""
    return command if isinstance(command, str) else shell_line(command)


def dumps(data: Any) -> str:
    import json

    from ghost.text import printable

    return printable(json.dumps(data, ensure_ascii=False))


def started_block(started: Started) -> str:
    pid = "-" if started.status == "queued" else str(started.pid)  # queued: no process yet
    return (f"Started background process:\n  Task ID: {escape(started.id)}\n"
            f"  PID: {pid}\n  Log file: {escape(started.log_path)}")


def ended(task: Shown) -> str:
    """The status word, with how a finished task ended: `exited (3)`, `killed (SIGTERM)`.

    The word comes first so a script matching `exited`/`killed`/... keeps working."""
    status = task.status
    if status == "exited" and task.exit_code is not None:
        return f"exited ({task.exit_code})"
    if status == "killed" and task.signal:
        return f"killed ({escape(task.signal)})"
    if status == "restarting":
        # only full records are ever restarting (short rows are for finished tasks)
        attempt, at = getattr(task, "attempt", 1), getattr(task, "next_restart_ns", None)
        return f"restarting (attempt {attempt + 1} at {clock(at)})"
    return escape(status)


def clock(ns: int | None) -> str:
    return "" if ns is None else time.strftime("%H:%M:%S", time.localtime(ns / 1e9))


def supervised(task: Shown, word: str) -> str:
    """`ended` plus what the restart policy did: `exited (1), gave up after 3 restarts`."""
    gave_up = getattr(task, "gave_up", None)  # short rows (finished tasks) do not carry it
    if gave_up is not None:
        return f"{word}, gave up after {gave_up} restarts"
    return word


def status_word(observed: Observed) -> str:
    task = observed.task
    if task.running and observed.unmonitored:
        return "running (unmonitored)"
    if observed.group_left:
        noun = "process" if observed.group_left == 1 else "processes"
        return f"{ended(task)}, {observed.group_left} {noun} still running in its group"
    return ended(task)


def table(tasks: Iterable[Shown], usage: Mapping[str, Usage] | None = None) -> str:
    """The list: one aligned row per task. With `usage` (`--wide`), running tasks' CPU,
    memory, uptime and ports follow the first three columns."""
    tasks = list(tasks)
    if not tasks:
        return "No tasks found."
    named = any(t.name for t in tasks)  # a Name column only when a task has a name (issue 15)
    headers = table_headers(named, usage is not None)
    columns = table_columns(tasks, named, usage)
    widths = column_widths(columns, headers)
    return "\n".join([*head_lines(headers, widths), *row_lines(columns, widths)])


def table_headers(named: bool, wide: bool) -> list[str]:
    return [*LIST_HEADERS[:3], *(["Name"] if named else []), *(WIDE_HEADERS if wide else ()),
            *LIST_HEADERS[3:]]


def table_columns(tasks: list[Shown], named: bool,
                  usage: Mapping[str, Usage] | None = None) -> list[list[str]]:
    """The table's cells, column by column: a whole column of stored strings is checked for
    anything to escape in one C call (`list` shows every task: per-cell calls were most of
    its time)."""
    columns = [_escaped([t.id for t in tasks]),
               [str(t.pid) if t.pid else "-" for t in tasks],
               # the common row, exited with a code, inline: two calls fewer per row
               [f"exited ({t.exit_code})" if t.status == "exited" and t.exit_code is not None
                and t.gave_up is None else supervised(t, ended(t)) for t in tasks]]
    if named:
        columns.append([escape(t.name) or "-" for t in tasks])
    if usage is not None:
        cells = [usage_cells(usage.get(t.id)) for t in tasks]
        columns += [[c[i] for c in cells] for i in range(len(WIDE_HEADERS))]
    columns += [_local_times([t.started_ns for t in tasks]),
                _escaped([t.command if t.command.__class__ is str else command_line(t.command)
                          for t in tasks]),
                _escaped([t.cwd for t in tasks])]
    return columns


def column_widths(columns: list[list[str]], headers: Sequence[str] = ()) -> list[int]:
    """Each column's width: its longest cell (or header)."""
    return [max(max(map(len, column), default=0), len(headers[i]) if headers else 0)
            for i, column in enumerate(columns)]


def head_lines(headers: Sequence[str], widths: Sequence[int]) -> list[str]:
    header = _pattern(widths).format(*headers).rstrip()
    return [header, "-" * len(header)]


def row_lines(columns: list[list[str]], widths: Sequence[int]) -> list[str]:
    # Aligned by hand (tabulate's per-cell type sniffing costs ~27 ms for 1,000 tasks): one
    # format string for every row; the last column is not padded.
    pattern = _pattern(widths)
    return [pattern.format(*row).rstrip() for row in zip(*columns, strict=True)]


def _pattern(widths: Sequence[int]) -> str:
    return "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"


def _local_times(stamps: list[int]) -> list[str]:
    """`local_time` of a whole column: one strftime per distinct minute, no call per row."""
    seconds = [ns // 1_000_000_000 for ns in stamps]
    minutes = _minutes
    for minute in {s // 60 for s in seconds}.difference(minutes):
        minutes[minute] = time.strftime("%Y-%m-%d %H:%M:", time.localtime(minute * 60))
    return [f"{minutes[s // 60]}{s % 60:02d}" for s in seconds]


def _escaped(column: list[str]) -> list[str]:
    """The column escaped; untouched (one check) when nothing in it needs escaping."""
    if "".join(column).isprintable():
        return column
    return [escape(cell) for cell in column]


def usage_cells(used: Usage | None) -> tuple[str, str, str, str]:
    if used is None:
        return ("", "", "", "")
    ports = ",".join(map(str, used.ports)) or "-"
    return (f"{used.cpu_percent:.1f}%", human_bytes(used.rss_bytes),
            duration_short(used.uptime_s), ports)


def usage_lines(used: Usage | None) -> list[str]:
    """`status`: what a running task uses now."""
    if used is None:
        return []
    noun = "process" if used.processes == 1 else "processes"
    ports = ", ".join(f"{p.proto} {p.address}:{p.port}" for p in used.ports) or "none"
    return [f"CPU: {used.cpu_percent:.1f}% (average since start)",
            f"Memory: {human_bytes(used.rss_bytes)} ({used.processes} {noun})",
            f"Uptime: {duration_short(used.uptime_s)}",
            f"Ports: {ports}"]


def human_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f} {unit}"


def duration_short(seconds: float) -> str:
    """Uptime as people say it: 42s, 5m03s, 2h05m, 3d04h."""
    total = int(seconds)
    if total < 60:
        return f"{total}s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


def stop_line(task: Task, force: bool, timeout: float) -> str:
    """S0's line, `Process <id> (<pid>) has been exited` (`killed` with --force), plus the
    truth when SIGTERM was not enough: `... has been exited (SIGKILL after 10 s)`."""
    line = f"Process {escape(task.id)} ({task.pid}) has been {'killed' if force else 'exited'}"
    if not force and task.stop.get("signal") == "SIGKILL" and not task.stop.get("force"):
        line += f" (SIGKILL after {timeout:g} s)"
    return line


def status_lines(observed: Observed, used: Usage | None = None) -> str:
    """`status`: S0's lines in S0's order; with `used` (`--wide`), what it uses now."""
    task = observed.task
    lines = [
        f"Task: {escape(task.id)}",
        f"PID: {task.pid}",
        f"Status: {supervised(task, status_word(observed))}",
        *identity_lines(task),
        f"Command: {command_line(task.command)}",
        f"Working directory: {escape(task.cwd)}",
        f"Started: {local_time(task.started_ns)}",
        *usage_lines(used),
    ]
    if task.status in ("exited", "killed", "unknown"):
        lines.append(f"Finished: {local_time(task.finished_ns)}")
        if task.status == "exited":
            lines.append(f"Exit code: {task.exit_code}")
        elif task.status == "killed":
            lines.append(f"Signal: {escape(str(task.signal))}")
        else:
            lines.append(f"Exit code: unknown ({escape(str(task.lost_reason))})")
        if task.finished_ns:
            lines.append(f"Duration: {duration(task.finished_ns - task.started_ns)}")
    if task.stop:
        who = task.stop.get("actor", {})
        said = escape(f"{task.stop.get('signal')} by {who.get('user', '?')} "
                      f"via {who.get('via', '?')}")
        lines.append(f"Stop requested: {said} at {local_time(task.stop.get('time_ns'))}")
    lines.append(f"Log file: {escape(task.log_path)}")
    lines += io_lines(task)
    return "\n".join(lines)


def io_lines(task: Task) -> list[str]:
    """Input, terminal, rotation and a failed log write, for `status` (only when set)."""
    io, lines = task.io, []
    if io.get("input") == "pty":
        lines.append(f"Input: terminal {io.get('cols')}x{io.get('rows')} (ghost send/attach)")
    elif io.get("input") == "pipe":
        lines.append("Input: pipe (ghost send)")
    if io.get("log_max"):
        lines.append(f"Log rotation: at {io['log_max']} bytes, keeping {io.get('log_keep')}")
    if task.log_error:
        lines.append(f"Log write failed: {escape(task.log_error)} (output since then is lost)")
    return lines


def duration(ns: int) -> str:
    seconds = max(0, ns) / 1e9
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


def identity_lines(task: Task) -> list[str]:
    """Name, group, attempts and policy for `status` (only what is set: S0's lines stay)."""
    out = []
    if task.name:
        out.append(f"Name: {escape(task.name)}")
    if task.group != "default":
        out.append(f"Group: {escape(task.group)}")
    if task.attempt > 1 or task.policy:
        out.append(f"Attempts: {task.attempt}")
    if task.policy:
        limit = task.policy.get("max_restarts")
        out.append(f"Restart policy: {escape(str(task.policy.get('restart')))}"
                   f"{'' if limit is None else f' (at most {limit} restarts)'}")
    if task.after:
        kind = "any of" if task.after_any else "all of"
        out.append(f"After: {kind} {escape(', '.join(task.after))}")
    return out
