"""Click parameter types that refuse hostile values at parse time (exit 2, one `Error:` line).

Every number is finite and bounded, every time is one ghost can record, every task id is text
that could name a task. The bounds (documented in docs/reliability.md):

  stop -t SECONDS     0 .. 86400 (a day: no graceful shutdown needs longer, and the wait is
                      one poll() whose millisecond timeout must fit in 32 bits)
  wait -t SECONDS     0 .. 31536000 (a year; without -t, wait has no limit)
  cleanup -d DAYS     0 .. 36500 (a hundred years)
  --at/--since/--until  1970-01-01 .. 2262-04-11 (nanoseconds since the epoch in 63 bits)
  events --from SEQ   0 .. 2**63-1

Imports only click (and ghost.timeparse/errors when a time is checked): these types are
declared by the hot commands.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import click

from ghost.quote import quoted as shown

STOP_TIMEOUT_MAX = 86400.0
WAIT_TIMEOUT_MAX = 365 * 86400.0
CLEANUP_DAYS_MAX = 36500.0
SEQ_MAX = (1 << 63) - 1
TASK_ID_MAX = 128  # longer than any id (36) or prefix could be

if TYPE_CHECKING:  # generic in click's stubs since 8.2; plain at run time (click>=8.1 works)
    _ParamType = click.ParamType[Any, Any]
else:
    _ParamType = click.ParamType


class Bounded(_ParamType):
    """A finite number between `low` and `high` (floats unless `integer`)."""

    def __init__(self, low: float, high: float, unit: str, integer: bool = False) -> None:
        self.low, self.high, self.unit, self.integer = low, high, unit, integer
        self.name = "integer" if integer else "number"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number: float | int = value
        else:
            text = str(value).strip()
            try:
                number = int(text, 10) if self.integer else float(text)
            except ValueError:
                kind = "a whole number" if self.integer else "a number"
                self.fail(f"{shown(value)} is not {kind}", param, ctx)
        if isinstance(number, float) and not math.isfinite(number):
            self.fail(f"{shown(value)} is not a finite number", param, ctx)
        if not self.low <= number <= self.high:
            unit = f" {self.unit}" if self.unit else ""
            self.fail(f"{shown(value)} is out of range: {_plain(self.low)} to "
                      f"{_plain(self.high)}{unit}", param, ctx)
        return number

    def __repr__(self) -> str:
        return f"Bounded({self.low:g}, {self.high:g})"


def _plain(bound: float) -> str:
    """A bound as a person writes it: 31536000, not 3.1536e+07."""
    return str(int(bound)) if float(bound).is_integer() else f"{bound:g}"


class Time(_ParamType):
    """A time as `ghost.timeparse.parse_time` reads it, checked now; the text is passed on."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        from ghost.errors import GhostError
        from ghost.timeparse import parse_time

        try:
            parse_time(str(value))
        except GhostError as exc:  # its message already quotes the time and says what works
            raise click.UsageError(exc.message, ctx) from None
        return value


class TaskId(_ParamType):
    """Text that could name a task (an id or a prefix): refuses what no id can be, so the
    error says so instead of failing later on an undecodable or invisible value."""

    name = "task_id"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        text = str(value)
        if not text.strip():
            self.fail("the task id is empty", param, ctx)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(f"{shown(text)} is not valid UTF-8, so it is not a task id", param, ctx)
        if not text.isprintable():
            self.fail(f"{shown(text)} contains control characters, so it is not a task id",
                      param, ctx)
        if len(text) > TASK_ID_MAX:
            self.fail(f"{shown(text)} is {len(text)} characters long, so it is not a task id",
                      param, ctx)
        return text

    def shell_complete(self, ctx: click.Context, param: click.Parameter,
                       incomplete: str) -> list[Any]:
        """Task ids and names for the shell (ghost.cli.completion)."""
        from ghost.cli.completion import task_items

        return task_items(ctx, incomplete)


STOP_TIMEOUT = Bounded(0, STOP_TIMEOUT_MAX, "seconds")
WAIT_TIMEOUT = Bounded(0, WAIT_TIMEOUT_MAX, "seconds")
CLEANUP_DAYS = Bounded(0, CLEANUP_DAYS_MAX, "days")
SEQ = Bounded(0, SEQ_MAX, "", integer=True)
TIME = Time()
TASK_ID = TaskId()
