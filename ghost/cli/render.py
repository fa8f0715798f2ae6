"""Turning tasks into the text and JSON users and scripts read. Never touches the store."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ghost.text import escape

if TYPE_CHECKING:  # `ghost run` renders without loading the store's modules
    from ghost.actions.run import Started
    from ghost.state.tasks import Observed
    from projections.tasks import Task

LIST_HEADERS = ("Task ID", "PID", "Status", "Started", "Command", "Directory")


def local_time(ns: int | None) -> str:
    if ns is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ns / 1e9))


def command_line(command: Sequence[str]) -> str:
    """The argv as a shell would read it, escaped for a terminal (an argv may hold anything)."""
    return escape(shlex.join(command))


def dumps(data: Any) -> str:
    import json

    from ghost.text import printable

    return printable(json.dumps(data, ensure_ascii=False))


def started_block(started: Started) -> str:
    return (f"Started background process:\n  Task ID: {escape(started.id)}\n"
            f"  PID: {started.pid}\n  Log file: {escape(started.log_path)}")


def ended(task: Task) -> str:
    """The status word, with how a finished task ended: `exited (3)`, `killed (SIGTERM)`.

    The word comes first so a script matching `exited`/`killed`/... keeps working."""
    status = task.status
    if status == "exited" and task.exit_code is not None:
        return f"exited ({task.exit_code})"
    if status == "killed" and task.signal:
        return f"killed ({escape(task.signal)})"
    return escape(status)


def status_word(observed: Observed) -> str:
    task = observed.task
    if task.running and observed.unmonitored:
        return "running (unmonitored)"
    if observed.group_left:
        noun = "process" if observed.group_left == 1 else "processes"
        return f"{ended(task)}, {observed.group_left} {noun} still running in its group"
    return ended(task)


def table(tasks: Iterable[Task]) -> str:
    rows = [(escape(t.id), str(t.pid), ended(t), local_time(t.started_ns),
             command_line(t.command), escape(t.cwd)) for t in tasks]
    if not rows:
        return "No tasks found."
    # Aligned by hand: tabulate's per-cell type sniffing costs ~27 ms for 1,000 tasks, this
    # ~1 ms, and `ghost list` is on every user's hot path. (`history` uses tabulate.)
    widths = [max(len(row[i]) for row in (LIST_HEADERS, *rows)) for i in range(6)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    header = line(LIST_HEADERS)
    return "\n".join([header, "-" * len(header), *map(line, rows)])


def status_lines(observed: Observed) -> str:
    task = observed.task
    lines = [
        f"Task: {escape(task.id)}",
        f"PID: {task.pid}",
        f"Status: {status_word(observed)}",
        f"Command: {command_line(task.command)}",
        f"Working directory: {escape(task.cwd)}",
        f"Started: {local_time(task.started_ns)}",
    ]
    if not task.running:
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
    return "\n".join(lines)


def duration(ns: int) -> str:
    seconds = max(0, ns) / 1e9
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"
