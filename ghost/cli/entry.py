"""The `ghost` executable.

Bare `ghost list` is the call made most (by people, and by scripts and agents polling what
runs) and the one whose cost grows with the history, so it is answered without importing
click: click and what it pulls in (typing, inspect, uuid, datetime) are ~16 ms of a ~100 ms
call (docs/benchmarks.md). It runs the very functions the click command runs
(ghost.cli.listlines.table_text); `list` with any option, and every other command, goes
through the click group in ghost.cli.main.
"""

from __future__ import annotations

import os
import sys
from typing import NoReturn, TextIO


def main() -> NoReturn:
    if sys.argv[1:] == ["list"] and "_GHOST_COMPLETE" not in os.environ:
        sys.exit(_list())
    from ghost.cli.main import main as with_click

    with_click()
    sys.exit(0)  # (with_click always exits)


def _list() -> int:
    from events.errors import StoreError
    from ghost.errors import GhostError

    try:
        from ghost.actions import query as views
        from ghost.cli import listlines
        from ghost.text import escape_lines

        text = listlines.table_text(views.table_rows("all"))
        echo(sys.stdout, escape_lines(text))
        note = views.skipped_note()
        if note:
            echo(sys.stderr, escape_lines(note))
    except (GhostError, StoreError) as exc:
        message, code = failure(exc)
        echo(sys.stderr, message)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        quiet_stdout()
    return 0


def echo(stream: TextIO | None, line: str) -> None:
    """Write `line` as click.echo would: a stream whose encoding is ASCII (`LANG=C` on some
    systems, `PYTHONIOENCODING=ascii`) gets UTF-8, not an encoding error; a closed one
    (`ghost list >&-`, where Python has no sys.stdout) nothing."""
    import codecs

    if stream is None:
        return

    try:
        ascii_only = codecs.lookup(getattr(stream, "encoding", None) or "ascii").name == "ascii"
    except LookupError:
        ascii_only = False
    if ascii_only:
        stream.flush()
        stream.buffer.write(f"{line}\n".encode("utf-8", "replace"))
        stream.buffer.flush()
    else:
        stream.write(f"{line}\n")
        stream.flush()


def failure(exc: Exception) -> tuple[str, int]:
    """The `Error:` line and exit code of a GhostError, or of store damage met on a path no
    action translated into one."""
    from events.errors import StoreError
    from ghost.errors import GhostError
    from ghost.text import escape  # the message may quote a stored string or an argument

    if isinstance(exc, StoreError):
        from ghost.state.store import as_ghost_error

        exc = as_ghost_error(exc)
    assert isinstance(exc, GhostError)
    return f"Error: {escape(exc.message)}", exc.exit_code


def quiet_stdout() -> None:
    """After a closed pipe, make the interpreter's final flush go nowhere instead of failing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
