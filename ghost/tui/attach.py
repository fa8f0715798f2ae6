"""`a` in the task list: use a --pty task's terminal, the UI suspended meanwhile (App.suspend).

The session is ghost.actions.attach's (the same one `ghost attach` uses, recorded with
`via="tui"`); this module only owns the real terminal while it runs, as the CLI's attach does:
raw mode, the window size passed on, restored on every way out (detach, the task's end, an
error, SIGTERM, SIGHUP). Ctrl-] detaches; the task keeps running.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import termios
import tty
from types import FrameType

from ghost.actions.attach import Session
from ghost.errors import GhostError
from projections.tasks import Task

DETACH = b"\x1d"  # Ctrl-]
READ = 1 << 16
ALT_SCREEN, MAIN_SCREEN = "\x1b[?1049h", "\x1b[?1049l"


class _Hangup(Exception):
    """SIGTERM or SIGHUP while attached: unwind so the terminal is restored."""


def _raise_hangup(signum: int, frame: FrameType | None) -> None:
    raise _Hangup(signum)


def terminal() -> tuple[int, int]:
    """The real terminal's input and output (the app's own streams are redirected)."""
    stdin, stdout = sys.__stdin__, sys.__stdout__
    if stdin is None or stdout is None or not (stdin.isatty() and stdout.isatty()):
        raise GhostError("attach needs a terminal")
    return stdin.fileno(), stdout.fileno()


def run(session: Session, recent: bytes, banner: str) -> Task | None:
    """Copy keys to the task and its output to the terminal until Ctrl-] (None) or the
    task's end (the ended task). The caller closes the session."""
    tty_in, out = terminal()
    saved = termios.tcgetattr(tty_in)
    old = {s: signal.signal(s, _raise_hangup) for s in (signal.SIGTERM, signal.SIGHUP)}
    resized = [True]
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    try:
        tty.setraw(tty_in)
        # A screen of its own (as a full-screen program has): the one the user had before
        # `ghost ui` is left as it was, with nothing of the session on it.
        _write(out, f"{ALT_SCREEN}\x1b[H\x1b[2J{banner}\r\n".encode())
        _write(out, recent)
        return _loop(session, tty_in, out, resized)
    except _Hangup:
        return None
    finally:
        try:
            _write(out, MAIN_SCREEN.encode())
        finally:
            termios.tcsetattr(tty_in, termios.TCSAFLUSH, saved)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            signal.signal(signal.SIGWINCH, old_winch)


def _loop(session: Session, tty_in: int, out: int, resized: list[bool]) -> Task | None:
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
