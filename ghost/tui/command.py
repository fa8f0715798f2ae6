"""The `ui` click command. Textual is imported here, inside the command, and nowhere else on
the CLI's path: `ghost run/list/status` never pay for it, and without it `ghost ui` says how to
install it (exit 1)."""

from __future__ import annotations

import click

from ghost.errors import GhostError

TEXTUAL_MISSING = "ghost ui needs Textual: pip install 'ghost-tasks[tui]'"


@click.command(name="ui", context_settings={"help_option_names": ["-h", "--help"]})
def ui_command() -> None:
    """A live terminal UI: the task table, logs, stop/kill/run/rerun, history.

    \b
    Tab filters, / searches, Enter shows details, l the log, s stops, Ctrl+K kills,
    n runs a new command, r reruns, i sends a line, a attaches (--pty tasks),
    h history, t time travel, ? every key, q quits. NO_COLOR is honoured.
    """
    try:
        import textual  # noqa: F401
    except ImportError:
        raise GhostError(TEXTUAL_MISSING) from None
    from ghost.tui.app import GhostApp

    app = GhostApp()
    app.run()
    if app.failure is not None:  # printed after the screen was restored, as one line
        raise GhostError(app.failure)
    if app.return_code not in (None, 0):
        raise SystemExit(app.return_code)
