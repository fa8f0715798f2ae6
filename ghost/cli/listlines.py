"""`ghost list` with a long history: the finished tasks' lines are rendered once and kept.

A finished task's row never changes, yet rendering it (status words, local times, escaping,
padding) cost ~5 us per row each call: 0.6 s of every `list` at 100,000 finished tasks. Their
lines are kept, in order, next to the list cache (ghost.state.listing.read_lines), keyed on
the set of finished rows (its version), the time zone, the Name column and this module's
RENDERING; a call then renders only the live tasks and merges them in.

The output is exactly the uncached one: kept lines are padded to widths `padded`, and used
only when those are still the widths of the whole table — the finished rows' own widths
(`own`, exact for the set) against the live rows' and the headers'. Anything else renders
every row again and keeps that.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from ghost.cli import render
from ghost.state.listing import Row

if TYPE_CHECKING:
    from ghost.actions.query import TableRows

RENDERING = 1  # bump when a finished row's rendering changes


def key(version: str, named: bool) -> str:
    try:
        zone_file = os.stat("/etc/localtime")
        zone = f"{zone_file.st_ino}:{zone_file.st_mtime_ns}"
    except OSError:
        zone = "-"
    return (f"{RENDERING}|{version}|{int(named)}|{os.environ.get('TZ', '')}|{time.tzname}|"
            f"{time.timezone}|{time.altzone}|{zone}")


def table_text(found: TableRows) -> str:
    """The table `ghost list` prints for `found`: when it holds every task, with the finished
    ones' lines as rendered before (and what this call rendered kept for the next)."""
    from ghost.actions import query as views

    if found.version is None:
        return render.table(found.rows, None)
    named = any(t.name for t in found.rows)
    kept_under = key(found.version, named)
    text, keep = table(found, named, views.rendered_rows(kept_under))
    if keep is not None:
        views.keep_rendered(kept_under, keep)
    return text


def table(found: TableRows, named: bool, cached: Any) -> tuple[str, Any]:
    """The table of `found` (every task, `found.version` set; `named`: a task has a name)
    using the `cached` rendering (what this returned before as its second item, or None);
    and what to keep, if it changed."""
    rows = found.rows
    if not rows:
        return "No tasks found.", None
    headers = render.table_headers(named, wide=False)
    at = [i for i, t in enumerate(rows) if t.__class__ is not Row]  # where the live rows go
    live = [rows[i] for i in at]
    live_columns = render.table_columns(live, named)
    live_widths = render.column_widths(live_columns, headers)
    kept = _usable(cached, len(rows) - len(live), len(headers))
    keep = None
    lines: list[str] | None = None
    if kept is not None:
        own, padded, text = kept
        widths = [max(a, b) for a, b in zip(own, live_widths, strict=True)]
        if widths == padded:
            lines = text.split("\n") if text else []
    if lines is None:
        columns = render.table_columns([t for t in rows if t.__class__ is Row], named)
        own = render.column_widths(columns)
        widths = [max(a, b) for a, b in zip(own, live_widths, strict=True)]
        lines = render.row_lines(columns, widths)
        keep = [own, widths, "\n".join(lines)]
    body = render.head_lines(headers, widths)
    done = 0  # finished lines placed so far
    for n, (i, line) in enumerate(zip(at, render.row_lines(live_columns, widths), strict=True)):
        body += lines[done:i - n]  # the finished rows before this live one
        body.append(line)
        done = i - n
    body += lines[done:]
    return "\n".join(body), keep


def _usable(cached: Any, count: int, columns: int) -> tuple[list[int], list[int], str] | None:
    """`cached` when it is a rendering of `count` rows in `columns` columns, else None."""
    try:
        own, padded, text = cached
        own, padded = list(own), list(padded)
        if not (len(own) == len(padded) == columns and isinstance(text, str)
                and all(isinstance(w, int) for w in own + padded)):
            return None
        if (text.count("\n") + 1 if text else 0) != count:
            return None
        return own, padded, text
    except (TypeError, ValueError):
        return None
