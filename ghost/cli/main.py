"""The `ghost` group: error handling, exit codes, and the table of commands.

The lifecycle commands (ghost.cli.lifecycle) are always loaded; every other command lives in its
own module and is imported only when invoked (`LAZY`), so `ghost run/list/status` never pay for
watchfiles, the MCP SDK and friends.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from events.errors import StoreError
from ghost import __version__
from ghost.cli.entry import failure, quiet_stdout
from ghost.errors import GhostError
from ghost.text import escape  # an Error: line may quote a stored string or an argument

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# command name -> (module, attribute, one-line help shown in `ghost --help`)
LAZY: dict[str, tuple[str, str, str]] = {
    "wait": ("ghost.cli.live", "wait_command", "Wait for tasks to end; exit with their exit code."),
    "history": ("ghost.cli.audit", "history_command", "Show the audit trail of tasks."),
    "events": ("ghost.cli.audit", "events_command", "Stream raw events for other tools."),
    "doctor": ("ghost.cli.doctor", "doctor_command", "Verify the event log and the views."),
    "compact": ("ghost.cli.compact", "compact_command", "Give the space of cleaned tasks back."),
    "mcp": ("ghost.mcp.server", "mcp_command", "Serve ghost to AI assistants over MCP."),
    "completion": ("ghost.cli.completion", "completion_command",
                   "Print the shell completion script (bash, zsh, fish)."),
    "send": ("ghost.cli.interactive", "send_command", "Send input to a --pty or --stdin task."),
    "resize": ("ghost.cli.interactive", "resize_command", "Set the terminal size of a --pty task."),
    "attach": ("ghost.cli.interactive", "attach_command", "Use a --pty task interactively."),
    "restart": ("ghost.cli.supervise", "restart_command", "Restart a task (or -g GROUP)."),
    "ui": ("ghost.tui.command", "ui_command", "A live terminal UI for tasks and their logs."),
    "serve": ("ghost.web.command", "serve_command", "Serve the HTTP API and web dashboard."),
}


class _Interrupted(Exception):
    """Ctrl+C inside a command, carried past click's own handling."""


class _PipeClosed(Exception):
    """The reader of stdout went away (`ghost log ID | head -1`): a quiet success."""


class Ghost(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY:
            module, attr, _ = LAZY[name]
            import importlib

            command: click.Command = getattr(importlib.import_module(module), attr)
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        # click turns EPIPE into a silent exit 1 before `main` below sees it; `ghost log | head`
        # succeeded, so re-raise it as something click lets through.
        # Likewise click prints a newline before turning Ctrl+C into Abort: exit 130 silently.
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise _PipeClosed from exc
        except KeyboardInterrupt as exc:
            raise _Interrupted from exc

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Always exits: `Error: ...` on one stderr line for every failure, 130 on Ctrl+C."""
        try:
            code = super().main(args, prog_name or "ghost", complete_var,
                                standalone_mode=False, **extra)
        except (GhostError, StoreError) as exc:  # store damage no action translated: one line
            message, exit_code = failure(exc)
            click.echo(message, err=True)
            sys.exit(exit_code)
        except click.UsageError as exc:
            click.echo(f"Error: {escape(exc.format_message())}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"Error: {escape(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.Abort, _Interrupted):
            sys.exit(130)
        except (BrokenPipeError, _PipeClosed):
            quiet_stdout()
            sys.exit(0)
        sys.exit(code if isinstance(code, int) else 0)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(n, c.get_short_help_str(80)) for n, c in sorted(self.commands.items())]
        rows += [(n, help_) for n, (_, _, help_) in LAZY.items()]
        with formatter.section("Commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=Ghost, context_settings=CONTEXT, invoke_without_command=True)
@click.version_option(__version__, "-V", "--version", prog_name="ghost",
                      message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run commands in the background and know exactly how they ended.

    \b
    ghost run npm run dev          start a task, print its id
    ghost list                     see tasks and how they ended
    ghost log -f ID                follow a task's output
    ghost stop ID                  SIGTERM its process group, SIGKILL after 10 s

    \b
    Data (the event store and every task's output) lives in $GHOST_DATA_DIR,
    else $XDG_DATA_HOME/ghost, else ~/.local/share/ghost.
    Shell completion of commands and task ids: `ghost completion --help`.
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


# -- entry point ---------------------------------------------------------------------------

def main(args: Sequence[str] | None = None) -> None:
    cli.main(args=args, prog_name="ghost")


def _add_lifecycle_commands() -> None:
    from ghost.cli import lifecycle

    for command in lifecycle.COMMANDS:
        cli.add_command(command)


_add_lifecycle_commands()
