"""The user's own terminal handed to an attach session (ghost.actions.attach.Session): raw
mode, the window size passed on, keys to the task and its output to the screen until Ctrl-]
or the task's end, and the terminal restored on every way out (detach, the task's end, an
error, SIGTERM, SIGHUP). `ghost attach` (ghost.cli.interactive) and the TUI's `a`
(ghost.tui.attach) both run it; each only says what to show around the session.
"""

from __future__ import annotations

import os
import select
import signal
import termios
import tty
from types import FrameType

from ghost.actions.attach import Session
from projections.tasks import Task

DETACH = b"\x1d"  # Ctrl-]
READ = 1 << 16


class _Hangup(Exception):
    """SIGTERM or SIGHUP while attached: unwind so the terminal is restored."""


def _raise_hangup(signum: int, frame: FrameType | None) -> None:
    raise _Hangup(signum)


def run_attached(session: Session, tty_in: int, out: int, *, enter: bytes, recent: bytes,
                 leave: bytes = b"") -> Task | None:
    """Copy until Ctrl-] or a hang-up (None) or the task's end (the ended task). `enter` and
    `recent` are written once in raw mode, `leave` on the way out, before the terminal's own
    mode comes back. The caller closes the session."""
    saved = termios.tcgetattr(tty_in)
    old = {s: signal.signal(s, _raise_hangup) for s in (signal.SIGTERM, signal.SIGHUP)}
    resized = [True]
    old_winch = signal.signal(signal.SIGWINCH, lambda *_: resized.__setitem__(0, True))
    try:
        tty.setraw(tty_in)
        _write(out, enter)
        _write(out, recent)
        return _copy(session, tty_in, out, resized)
    except _Hangup:
        return None
    finally:
        try:
            _write(out, leave)
        finally:
            termios.tcsetattr(tty_in, termios.TCSAFLUSH, saved)
            for sig, handler in old.items():
                signal.signal(sig, handler)
            signal.signal(signal.SIGWINCH, old_winch)


def _copy(session: Session, tty_in: int, out: int, resized: list[bool]) -> Task | None:
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
            task, rest = session.ended()  # the task's last output is read after its end
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
    """All of `data` (a terminal takes a long write in pieces)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
