"""The `ghost` command line: parse, call one core function, render. Nothing else.

Commands other than the lifecycle ones live in their own modules and are imported only when
invoked (`LAZY`), so `ghost run/list/status` never pay for watchfiles, the MCP SDK and friends.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from ghost import __version__
from ghost.errors import GhostError

STATUS_CHOICES = ("running", "exited", "killed", "unknown", "all")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# command name -> (module, attribute, one-line help shown in `ghost --help`)
LAZY: dict[str, tuple[str, str, str]] = {
    "wait": ("ghost.cli_live", "wait_command", "Wait for tasks to end; exit with their exit code."),
    "history": ("ghost.cli_audit", "history_command", "Show the audit trail of tasks."),
    "events": ("ghost.cli_audit", "events_command", "Stream raw events for other tools."),
    "doctor": ("ghost.doctor", "doctor_command", "Verify the event log and the views."),
    "mcp": ("ghost.mcp_server", "mcp_command", "Serve ghost to AI assistants over MCP."),
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

            return getattr(importlib.import_module(module), attr)
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
        except GhostError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except (KeyboardInterrupt, click.Abort, _Interrupted):
            sys.exit(130)
        except (BrokenPipeError, _PipeClosed):
            _quiet_stdout()
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
    """
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def out(text: str) -> None:
    from ghost.render import printable

    click.echo(printable(text))


def warn(note: str | None) -> None:
    if note:
        click.echo(note, err=True)


def as_json(data: Any) -> None:
    from ghost.render import dumps

    click.echo(dumps(data))


# -- run -----------------------------------------------------------------------------------

@cli.command(context_settings={**CONTEXT, "ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.option("-c", "--cwd", type=str, default=None, help="Working directory for the task.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Set an environment variable for the task (repeatable).")
@click.option("--json", "json_", is_flag=True, help="Print one JSON object per task.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(cwd: str | None, env: Sequence[str], json_: bool, command: Sequence[str]) -> None:
    """Start CMD [ARG...] in the background and print its task id.

    When the first argument contains a space, every argument is a whole command line and one
    task starts per argument: ghost run "npm run dev" "npm run worker".
    """
    from ghost.spawn import start

    for started in start(command, cwd, env):
        from ghost import render

        if json_:
            as_json(render.started_json(started))
        else:
            out(render.started_block(started))


# -- list / status -------------------------------------------------------------------------

@cli.command(name="list")
@click.option("-s", "--status", type=click.Choice(STATUS_CHOICES), default="all",
              show_default=True, help="Only tasks with this status.")
@click.option("--json", "json_", is_flag=True, help="Print a JSON array.")
@click.option("-w", "--watch", is_flag=True, help="Redraw the table whenever a task changes.")
@click.option("--at", "at", metavar="TIME", help="The list as it was at TIME (ISO 8601, 2h, ...).")
def list_(status: str, json_: bool, watch: bool, at: str | None) -> None:
    """List tasks, newest first."""
    from ghost import render, views

    if watch:
        from ghost.cli_live import watch_list

        watch_list(status)
        return
    tasks = views.listing(status, at)
    if json_:
        as_json([render.task_json(t) for t in tasks])
    else:
        out(render.table(tasks))
    warn(views.skipped_note())


@cli.command()
@click.argument("task_id")
@click.option("--json", "json_", is_flag=True, help="Print a JSON object.")
@click.option("--at", "at", metavar="TIME", help="The task as it was at TIME.")
def status(task_id: str, json_: bool, at: str | None) -> None:
    """Show one task: command, directory, times, and how it ended."""
    from ghost import render, views

    observed = views.status(task_id, at)
    if json_:
        as_json(render.task_json(observed.task, observed))
    else:
        out(render.status_lines(observed))
    warn(views.skipped_note())


# -- log -----------------------------------------------------------------------------------

@cli.command()
@click.argument("task_ids", nargs=-1, required=True)
@click.option("-n", "--tail", type=click.IntRange(min=0), default=None,
              help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the task ends.")
def log(task_ids: Sequence[str], tail: int | None, follow: bool) -> None:
    """Print a task's output, byte for byte."""
    if follow:
        from ghost.cli_live import follow_logs

        follow_logs(task_ids, tail)
        return
    from ghost import views
    from ghost.logs import read

    stdout = sys.stdout.buffer
    for ident in task_ids:
        task = views.status(ident, None).task
        if len(task_ids) > 1:
            click.echo(f"==> {task.id} <==", err=True)
        for chunk in read(task.log_path, tail):
            stdout.write(chunk)
        stdout.flush()


# -- stop / kill / cleanup -----------------------------------------------------------------

def _stop(task_id: str, force: bool, timeout: float, json_: bool) -> None:
    from ghost.control import stop

    task = stop(task_id, force=force, timeout=timeout)
    if json_:
        from ghost.render import task_json

        as_json(task_json(task))
    else:
        out(f"Task {task.id} has been {'killed' if force else 'exited'}")


@cli.command()
@click.argument("task_id")
@click.option("-f", "--force", is_flag=True, help="SIGKILL at once instead of SIGTERM.")
@click.option("-t", "--timeout", type=float, default=10.0, show_default=True,
              help="Seconds to wait after SIGTERM before SIGKILL.")
@click.option("--json", "json_", is_flag=True, help="Print the ended task as JSON.")
def stop(task_id: str, force: bool, timeout: float, json_: bool) -> None:
    """Stop a task's whole process group: SIGTERM, then SIGKILL after the timeout."""
    _stop(task_id, force, timeout, json_)


@cli.command()
@click.argument("task_id")
@click.option("--json", "json_", is_flag=True, help="Print the ended task as JSON.")
def kill(task_id: str, json_: bool) -> None:
    """Kill a task's process group at once (stop --force)."""
    _stop(task_id, True, 0.0, json_)


@cli.command()
@click.option("-d", "--days", type=float, default=30, show_default=True,
              help="Only tasks that finished more than this many days ago.")
@click.option("-a", "--all", "everything", is_flag=True, help="Every finished task.")
@click.option("-s", "--status", default="all", show_default=True,
              help="Only tasks with this status: exited, killed, unknown or all.")
@click.option("-n", "--dry-run", is_flag=True, help="Show what would be deleted.")
def cleanup(days: float, everything: bool, status: str, dry_run: bool) -> None:
    """Remove finished tasks from the list and delete their logs (history keeps them)."""
    from ghost.control import cleanup as run_cleanup
    from ghost.render import table

    result = run_cleanup(days, everything, status, dry_run)
    if not result.tasks:
        out("No tasks found matching cleanup criteria.")
    elif dry_run:
        out(f"The following {len(result.tasks)} task(s) would be deleted:")
        out(table(result.tasks))
    else:
        out(f"Successfully deleted {len(result.tasks)} task(s).")


# -- entry point ---------------------------------------------------------------------------

def _quiet_stdout() -> None:
    """After a closed pipe, make the interpreter's final flush go nowhere instead of failing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(args: Sequence[str] | None = None) -> None:
    cli.main(args=args, prog_name="ghost")
