"""`ghost history` and `ghost events`: parse, call one function of ghost.actions.audit, render.

History is rendered as a table streamed row by row with fixed column widths, so the whole
audit trail of a large log starts printing at once and never has to fit in memory.
"""

from __future__ import annotations

import select
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import click

from events.types import (
    CLEANED,
    EXITED,
    KILLED,
    LOST,
    SPAWN_FAILED,
    SPAWNED,
    STOP_REQUESTED,
    Corrupt,
)
from ghost.actions import audit
from ghost.cli.options import SEQ, TASK_ID, TIME
from ghost.cli.render import command_line, duration, local_time
from ghost.cli.supervise import attempt_note, supervision_details
from ghost.state import records
from ghost.text import escape

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
HEADERS = ("Seq", "Time", "Task", "Event", "Details")
# The width of the first types' names (`stop_requested`), kept as types are added so the
# history of a v1 log reads exactly as it always did; a longer name pushes its own row's
# details a few columns right.
TYPE_WIDTH = len("stop_requested")
TIME_WIDTH = len("2026-01-01 00:00:00")
TASK_WIDTH = 8
PAGE = 1000  # rows written per write() call


# -- history ----------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@click.argument("task_id", required=False, type=TASK_ID)
@click.option("--since", type=TIME, metavar="TIME",
              help="Only events at or after TIME (ISO 8601, 2h, ...).")
@click.option("--until", type=TIME, metavar="TIME", help="Only events at or before TIME.")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Only events of this type (repeatable): "
                   + ", ".join(audit.EVENT_TYPES) + ".")
@click.option("--json", "json_", is_flag=True,
              help="JSON Lines, one event per line (the `ghost events` records).")
def history_command(task_id: str | None, since: str | None, until: str | None,
                    types: tuple[str, ...], json_: bool) -> None:
    """Show the audit trail: every event of every task, or of one task (ID or prefix).

    Cleaned tasks and tasks that failed to start keep their history. TIME accepts ISO 8601
    (2026-11-21T03:00), a date, or a relative time: 2h, 30m ago, yesterday.
    """
    found = audit.history(task_id, since, until, types)
    stdout = sys.stdout.buffer
    if json_:
        for page in _pages(e.item for e in found.entries):
            stdout.write(records.jsonl(page, found.store_id))
        stdout.flush()
        return
    wrote = False
    for lines in _pages(history_lines(found.entries, len(str(max(found.last_seq, 1))))):
        stdout.write(records.utf8("\n".join(lines) + "\n"))
        wrote = True
    if not wrote:
        stdout.write(b"No events found.\n")
    stdout.flush()


def _pages(items: Iterable[Any]) -> Iterator[list[Any]]:
    page: list[Any] = []
    for item in items:
        page.append(item)
        if len(page) >= PAGE:
            yield page
            page = []
    if page:
        yield page


def history_lines(entries: Iterable[audit.Entry], seq_width: int) -> Iterator[str]:
    """The table: a header, a rule, then one line per event (nothing at all when empty)."""
    seq_width = max(seq_width, len(HEADERS[0]))
    widths = (seq_width, TIME_WIDTH, TASK_WIDTH, TYPE_WIDTH)
    first = True
    for entry in entries:
        if first:
            header = _row(widths, HEADERS)
            yield header
            yield "-" * len(header)
            first = False
        yield _row(widths, cells(entry))


def _row(widths: tuple[int, ...], values: tuple[str, ...]) -> str:
    seq, *rest = values
    parts = [seq.rjust(widths[0])] + [v.ljust(w) for v, w in zip(rest, widths[1:], strict=False)]
    parts += values[len(widths):]
    return "  ".join(parts).rstrip()


def cells(entry: audit.Entry) -> tuple[str, ...]:
    """One row's cells, escaped: ids, types and details are stored strings a task's starter
    chose (a command line, an error text), so none may reach the terminal raw."""
    item = entry.item
    if isinstance(item, Corrupt):
        return (str(item.seq), local_time(entry.time_ns) if entry.time_ns else "", "?",
                "corrupt", escape(item.reason))
    kind = item.type if item.known else f"unknown ({item.type} v{item.v})"
    return (str(item.seq), local_time(item.time_ns), escape(item.task[:TASK_WIDTH]),
            escape(kind), escape(details(item.type if item.known else "", item.data,
                                         entry.started_ns)))


def _by(data: Mapping[str, Any]) -> str:
    who = data.get("actor")
    if not isinstance(who, Mapping) or not who:
        return ""
    return f"by {who.get('user', '?')} via {who.get('via', '?')}"


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def _took(data: Mapping[str, Any], started_ns: int | None) -> str:
    end = data.get("end_ns")
    if started_ns is None or not isinstance(end, int):
        return ""
    return f"after {duration(end - started_ns)}"


def details(kind: str, data: Mapping[str, Any], started_ns: int | None) -> str:
    """What a person needs to know about one event, on one line."""
    if kind == SPAWNED:
        return _join(command_line([str(a) for a in data["command"]]),
                     f"pid {data['pid']}", attempt_note(data), _by(data))
    if kind == SPAWN_FAILED:
        return _join(f"{data['error']} (exit code {data['exit_code']})",
                     command_line([str(a) for a in data["command"]]), _by(data))
    if kind == STOP_REQUESTED:
        return _join(data["signal"], f"timeout {data['timeout']:g}s",
                     "forced" if data["force"] else "",
                     "escalated" if data.get("escalated") else "", _by(data))
    if kind == EXITED:
        return _join(f"exit code {data['code']}", _took(data, started_ns))
    if kind == KILLED:
        core = " (core dumped)" if data.get("core_dumped") else ""
        return _join(f"signal {data['signal']}{core}", _took(data, started_ns))
    if kind == LOST:
        return _join(f"end unknown: {data['reason']}", _by(data))
    if kind == CLEANED:
        log = "log deleted" if data["log_removed"] else "log kept"
        return _join(f"removed from the list, {log}", _by(data))
    said = supervision_details(kind, data)
    if said is not None:
        return _join(said, _by(data))
    names = sorted(k for k in data if k not in records.SECRET_FIELDS)
    return f"fields: {', '.join(names)}" if names else ""


# -- events -----------------------------------------------------------------------------------

@click.command(context_settings=CONTEXT)
@click.option("--from", "after", type=SEQ, default=0, show_default=True, metavar="SEQ",
              help="The last seq already processed: output resumes right after it.")
@click.option("-f", "--follow", is_flag=True,
              help="Keep streaming new events as they are committed (until Ctrl+C).")
@click.option("--format", "fmt", type=click.Choice(("jsonl", "msgpack")), default="jsonl",
              show_default=True, help="JSON Lines, or a stream of msgpack maps.")
def events_command(after: int, follow: bool, fmt: str) -> None:
    """Stream the raw event log for other tools: in order, resumable, no gaps or duplicates.

    Every record has seq, time (RFC 3339 UTC), time_ns, type, task, v (schema version),
    store (the log's id) and the event's fields. See docs/events.md.
    """
    from events.follow import Interrupted
    from ghost.actions.events import stream

    found = stream(after, follow, fmt, stop=_reader_gone if follow else None)
    out = sys.stdout.buffer
    try:
        for records in found.chunks:
            if records:
                out.write(records)
                out.flush()  # a line never waits for the next event
    except (KeyboardInterrupt, Interrupted):
        sys.exit(130)  # Ctrl+C is how a follow ends: no traceback, not even click's newline
    except BrokenPipeError:
        _end_quietly()
    finally:
        found.chunks.close()  # ends the export's workers, if any, before we exit
    if follow and _reader_gone():
        _end_quietly()  # the reader left while we waited for events


def _end_quietly() -> None:
    from ghost.cli.entry import quiet_stdout

    quiet_stdout()
    sys.exit(0)


def _reader_gone() -> bool:
    """True once nobody can read our stdout any more (the pipe's reading end is closed)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLERR)
        return any(mask & (select.POLLERR | select.POLLHUP) for _, mask in poller.poll(0))
    except (OSError, ValueError):
        return False

