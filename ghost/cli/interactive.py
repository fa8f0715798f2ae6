"""`send`, `resize` and `attach`: the commands for tasks started with --pty or --stdin.

Loaded only when one of them runs (ghost.cli.main LAZY). `attach` hands the terminal to the
session (ghost.terminal: raw mode, restored on every way out) and says how it ended.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence

import click

from ghost.errors import USAGE, GhostError

VIA = "cli"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
READ = 1 << 16


def _stdin_chunks() -> Iterator[bytes]:
    fd = sys.stdin.fileno()
    while chunk := os.read(fd, READ):
        yield chunk


def _file_chunks(path: str) -> Iterator[bytes]:
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below, after the last chunk
    except OSError as exc:
        raise GhostError(f"cannot read {path}: {exc.strerror}", USAGE) from None
    with f:
        while chunk := f.read(READ):
            yield chunk


@click.command(name="send", context_settings=CONTEXT)
@click.argument("task_id")
@click.argument("text", nargs=-1)
@click.option("-n", "no_newline", is_flag=True, help="Do not add a newline after TEXT.")
@click.option("--file", "file_", metavar="FILE", help="Send the contents of FILE.")
@click.option("--eof", is_flag=True,
              help="Then close the task's input (^D on a terminal).")
def send_command(task_id: str, text: Sequence[str], no_newline: bool, file_: str | None,
                 eof: bool) -> None:
    """Send TEXT (plus a newline) to the input of a task started with --pty or --stdin.

    \b
    ghost send ID y                 answer a prompt
    ghost send ID -                 send ghost's own stdin until EOF
    ghost send ID --file cmds.txt   send a file
    ghost send ID --eof             close the task's input
    """
    from ghost.actions.send import send

    chunks: Iterator[bytes] | list[bytes]
    if file_ is not None:
        if text:
            raise GhostError("give either TEXT or --file, not both", USAGE)
        chunks = _file_chunks(file_)
    elif list(text) == ["-"]:
        chunks = _stdin_chunks()
    elif text:
        data = os.fsencode(" ".join(text)) + (b"" if no_newline else b"\n")
        chunks = [data]
    elif eof:
        chunks = []
    else:
        raise GhostError("nothing to send: give TEXT, -, --file FILE or --eof", USAGE)
    send(task_id, chunks, eof=eof, via=VIA)


@click.command(name="resize", context_settings=CONTEXT)
@click.argument("task_id")
@click.argument("cols", type=click.IntRange(1, 65535))
@click.argument("rows", type=click.IntRange(1, 65535))
def resize_command(task_id: str, cols: int, rows: int) -> None:
    """Set the terminal size of a --pty task (it gets SIGWINCH)."""
    from ghost.actions.send import resize

    resize(task_id, cols, rows, via=VIA)


@click.command(name="attach", context_settings=CONTEXT)
@click.argument("task_id")
def attach_command(task_id: str) -> None:
    """Use a --pty task interactively: its screen, your keys. Ctrl-] detaches (it keeps running)."""
    from ghost.actions.attach import attach
    from ghost.actions.send import interactive_task

    interactive_task(task_id, need_pty=True)  # the task's refusal comes first
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise GhostError("attach needs a terminal (use `ghost send` from scripts)", USAGE)
    session, recent = attach(task_id, via=VIA)
    from ghost.actions.wait import short_id
    from ghost.terminal import run_attached

    banner = (f"ghost: attached to task {short_id(session.task.id)}; "
              "Ctrl-] detaches (the task keeps running)\r\n")
    try:
        ended = run_attached(session, sys.stdin.fileno(), sys.stdout.fileno(),
                             enter=banner.encode(), recent=recent)
    finally:
        session.close()
    if ended is not None:
        from ghost.state.tasks import describe_end
        from ghost.text import escape

        click.echo(f"\nghost: task {escape(short_id(ended.id))} {escape(describe_end(ended))}",
                   err=True)
    else:
        click.echo("\nghost: detached", err=True)
