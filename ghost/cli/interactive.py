"""`send`, `resize` and `attach`: the commands for tasks started with --pty or --stdin.

Loaded only when one of them runs (ghost.cli.main LAZY). `attach` owns the terminal while it
runs: raw mode, restored on every way out (detach, the task's end, an error, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Iterator, Sequence
from types import FrameType

import click

from ghost.errors import USAGE, GhostError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ghost.actions.attach import Session
    from projections.tasks import Task

VIA = "cli"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DETACH = b"\x1d"  # Ctrl-]
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


class _Hangup(Exception):
    """SIGTERM or SIGHUP while attached: unwind so the terminal is restored."""


def _raise_hangup(signum: int, frame: FrameType | None) -> None:
    raise _Hangup(signum)


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

    tty_in = sys.stdin.fileno()
    out = sys.stdout.fileno()
    import termios
    import tty

    saved = termios.tcgetattr(tty_in)
    old = {s: signal.signal(s, _raise_hangup) for s in (signal.SIGTERM, signal.SIGHUP)}
    resized = [True]
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    ended = None
    try:
        tty.setraw(tty_in)
        _write(out, f"ghost: attached to task {short_id(session.task.id)}; "
                    "Ctrl-] detaches (the task keeps running)\r\n".encode())
        _write(out, recent)
        ended = _loop(session, tty_in, out, resized)
    except _Hangup:
        pass
    finally:
        termios.tcsetattr(tty_in, termios.TCSAFLUSH, saved)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        signal.signal(signal.SIGWINCH, old_winch)
        session.close()
    if ended is not None:
        from ghost.state.tasks import describe_end
        from ghost.text import escape

        click.echo(f"\nghost: task {escape(short_id(ended.id))} {escape(describe_end(ended))}",
                   err=True)
    else:
        click.echo("\nghost: detached", err=True)


def _loop(session: Session, tty_in: int, out: int, resized: list[bool]) -> Task | None:
    """Copy until Ctrl-] (returns None) or the task's end (returns the ended task)."""
    while True:
        if resized[0]:
            resized[0] = False
            size = os.get_terminal_size(out)
            session.resize(size.columns, size.lines)
        try:
            ready, _, _ = select.select([tty_in, session.fileno()], [], [], 0.05)
        except InterruptedError:
            ready = []
        _write(out, session.output())
        if session.fileno() in ready and not session.answers():
            task, rest = session.ended()
            _write(out, rest)
            return task
        if tty_in in ready:
            keys = os.read(tty_in, READ)
            cut = keys.find(DETACH)
            if cut >= 0:
                if cut:
                    session.send(keys[:cut])
                return None
            if keys:
                session.send(keys)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
