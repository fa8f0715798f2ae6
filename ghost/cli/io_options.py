"""`run`'s --pty/--cols/--rows/--stdin/--timestamps/--log-max/--log-keep and `log`'s
--timestamps/--since/--until/--stream: plain click declarations (loaded with the lifecycle
commands, so they cost nothing more); the work is in ghost.actions.stdio and ghost.cli.logview.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ghost.cli.options import TIME

F = TypeVar("F", bound=Callable[..., Any])

_RUN_OPTIONS = (
    click.option("--pty", "io_pty", is_flag=True,
                 help="Run the task on a pseudo-terminal (for prompts, REPLs, colours); "
                      "use `ghost send`, `resize`, `attach`."),
    click.option("--cols", "io_cols", type=click.IntRange(1, 65535), default=None,
                 help="Terminal width for --pty (default: yours, or 80)."),
    click.option("--rows", "io_rows", type=click.IntRange(1, 65535), default=None,
                 help="Terminal height for --pty (default: yours, or 24)."),
    click.option("--stdin", "io_stdin", is_flag=True,
                 help="Keep the task's stdin open as a pipe for `ghost send`."),
    click.option("--timestamps", "io_timestamps", is_flag=True,
                 help="Record when each chunk of output was written and whether it was stdout "
                      "or stderr (for `log --timestamps/--since/--stream`)."),
    click.option("--log-max", "io_log_max", default=None, metavar="SIZE",
                 help="Rotate the log at SIZE (10M, 1G): <id>.log.1, .2, ..."),
    click.option("--log-keep", "io_log_keep", type=click.IntRange(0, 100), default=None,
                 metavar="N", help="Rotated logs to keep with --log-max (default 3)."),
)


def run_io_options(f: F) -> F:
    for option in reversed(_RUN_OPTIONS):
        f = option(f)
    return f


def take_io(options: dict[str, Any]) -> dict[str, Any] | None:
    """Remove run's io options from `options`; the io settings, or None when none is given."""
    io = {name[3:]: options.pop(name) for name in list(options) if name.startswith("io_")}
    if not any(io.get(k) for k in ("pty", "stdin", "timestamps", "log_max", "cols", "rows",
                                    "log_keep")):
        return None
    io["explicit_size"] = io.get("cols") is not None or io.get("rows") is not None
    if io.get("pty") and (io.get("cols") is None or io.get("rows") is None):
        size = _terminal_size()
        if size is not None:
            io["cols"] = io.get("cols") or size[0]
            io["rows"] = io.get("rows") or size[1]
    return io


def _terminal_size() -> tuple[int, int] | None:
    """The caller's terminal size, when ghost runs on one."""
    for stream in (sys.stdout, sys.stdin, sys.stderr):
        try:
            if stream.isatty():
                size = os.get_terminal_size(stream.fileno())
                return size.columns, size.lines
        except (OSError, ValueError):
            continue
    return None


_LOG_OPTIONS = (
    click.option("--timestamps", "timestamps", is_flag=True,
                 help="Start each line with when it was written (RFC 3339, ms)."),
    click.option("--since", "since", type=TIME, default=None, metavar="TIME",
                 help="Only output written at or after TIME (ISO 8601, 2h, ...)."),
    click.option("--until", "until", type=TIME, default=None, metavar="TIME",
                 help="Only output written at or before TIME."),
    click.option("--stream", "stream", type=click.Choice(["stdout", "stderr"]), default=None,
                 help="Only what the task wrote to this stream."),
)


def log_filter_options(f: F) -> F:
    for option in reversed(_LOG_OPTIONS):
        f = option(f)
    return f
