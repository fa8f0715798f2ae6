"""`a` in the task list: use a --pty task's terminal, the UI suspended meanwhile (App.suspend).

The session is ghost.actions.attach's and the terminal is handed to it by ghost.terminal (the
same ones `ghost attach` uses; recorded with `via="tui"`). This module only finds the real
terminal and gives the session a screen of its own. Ctrl-] detaches; the task keeps running.
"""

from __future__ import annotations

import sys

from ghost.actions.attach import Session
from ghost.errors import GhostError
from ghost.terminal import run_attached
from projections.tasks import Task

ALT_SCREEN, MAIN_SCREEN = "\x1b[?1049h", "\x1b[?1049l"


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
    # A screen of its own (as a full-screen program has): the one the user had before
    # `ghost ui` is left as it was, with nothing of the session on it.
    enter = f"{ALT_SCREEN}\x1b[H\x1b[2J{banner}\r\n".encode()
    return run_attached(session, tty_in, out, enter=enter, recent=recent,
                        leave=MAIN_SCREEN.encode())
