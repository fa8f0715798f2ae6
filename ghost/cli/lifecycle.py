"""The lifecycle commands: run, list, status, log, stop, kill, cleanup.

Each parses its arguments, calls one action (ghost.actions) with `via="cli"`, and renders the
result (ghost.cli.render, or JSON). Imports beyond click stay inside the commands: every
`ghost` call is a fresh interpreter.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from ghost.cli.io_options import log_filter_options, run_io_options, take_io
from ghost.cli.options import CLEANUP_DAYS, STOP_TIMEOUT, TASK_ID, TIME
from ghost.cli.supervise import group_option, stop_or_group, supervision_options

STATUS_CHOICES = ("running", "exited", "killed", "unknown", "queued", "restarting", "all")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
VIA = "cli"


def out(text: str) -> None:
    """Print what render made. Its stored strings are escaped already; escaping each line again
    is the safety net for anything that was not (a newline between lines is ours)."""
    from ghost.text import escape_lines

    click.echo(escape_lines(text))


def warn(note: str | None) -> None:
    if note:
        from ghost.text import escape_lines

        click.echo(escape_lines(note), err=True)


def as_json(data: Any) -> None:
    from ghost.cli.render import dumps

    click.echo(dumps(data))


# -- run -----------------------------------------------------------------------------------

@click.command(context_settings={**CONTEXT, "ignore_unknown_options": True,
                               "allow_interspersed_args": False})
@click.option("-c", "--cwd", type=str, default=None, help="Working directory for the task.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE",
              help="Set an environment variable for the task (repeatable).")
@click.option("--json", "json_", is_flag=True, help="Print one JSON object per task.")
@supervision_options
@run_io_options
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(cwd: str | None, env: Sequence[str], json_: bool, command: Sequence[str],
        **supervise: Any) -> None:
    """Start CMD [ARG...] in the background and print its task id.

    When the first argument contains a space, every argument is a whole command line and one
    task starts per argument: ghost run "npm run dev" "npm run worker".
    """
    from ghost.actions.run import start
    from ghost.actions.supervise import supervision
    from ghost.cli import render
    from ghost.state import task_json

    io = take_io(supervise)  # --pty, --stdin, --timestamps, --log-max (ghost.cli.io_options)
    for started in start(command, cwd, env, via=VIA, sup=supervision(**supervise), io=io):
        if json_:
            as_json(task_json.started(started))
        else:
            out(render.started_block(started))


# -- list / status -------------------------------------------------------------------------

@click.command(name="list")
@click.option("-s", "--status", type=click.Choice(STATUS_CHOICES), default="all",
              show_default=True, help="Only tasks with this status.")
@click.option("--json", "json_", is_flag=True, help="Print a JSON array.")
@click.option("-w", "--watch", is_flag=True, help="Redraw the table whenever a task changes.")
@click.option("--at", "at", type=TIME, metavar="TIME",
              help="The list as it was at TIME (ISO 8601, 2h, ...).")
@group_option("Only tasks of GROUP.")
@click.option("-n", "--last", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the N newest tasks.")
@click.option("--since", type=TIME, metavar="TIME",
              help="Only tasks started at or after TIME (ISO 8601, 2h, yesterday, ...).")
@click.option("--wide", is_flag=True,
              help="Also CPU %, memory, uptime and listening ports of running tasks.")
def list_(status: str, json_: bool, watch: bool, at: str | None, group: str | None,
          last: int | None, since: str | None, wide: bool) -> None:
    """List tasks, newest first (all of them unless -n/--since say otherwise).

    \b
    ghost list -n 20             the 20 newest tasks
    ghost list --since 2h        tasks started in the last two hours
    ghost list -s running --wide what running tasks use, and their ports
    """
    from ghost.actions import query as views
    from ghost.cli import render
    from ghost.state import task_json

    if watch:
        from ghost.cli.live import watch_list

        watch_list(status)
        return
    if json_:
        tasks = views.listing(status, at, last=last, since=since, group=group)
        used = _usage(tasks) if wide else {}
        as_json([_with_usage(task_json.task(t), used, t.id, wide) for t in tasks])
    else:
        # Finished tasks come as short rows (ghost.state.listing): a long history stays cheap.
        found = views.table_rows(status, at, last=last, since=since, group=group)
        if wide:
            out(render.table(found.rows, _usage(found.rows)))
        else:  # (bare `ghost list` runs this without click: ghost.cli.entry)
            from ghost.cli import listlines

            out(listlines.table_text(found))
    warn(views.skipped_note())


def _with_usage(data: dict[str, Any], used: dict[str, Any], task_id: str,
                wide: bool) -> dict[str, Any]:
    """`--wide` JSON: a `resources` object for running tasks, null for the others."""
    if wide:
        found = used.get(task_id)
        data["resources"] = found.as_json() if found is not None else None
    return data


def _usage(tasks: Sequence[Any]) -> dict[str, Any]:
    from ghost.actions.resources import usage

    return usage([t for t in tasks if t.status == "running"], via=VIA)


@click.command()
@click.argument("task_id", type=TASK_ID)
@click.option("--json", "json_", is_flag=True, help="Print a JSON object.")
@click.option("--at", "at", type=TIME, metavar="TIME", help="The task as it was at TIME.")
@click.option("--wide", is_flag=True,
              help="Also CPU %, memory, uptime and listening ports, if it is running.")
def status(task_id: str, json_: bool, at: str | None, wide: bool) -> None:
    """Show one task: command, directory, times, and how it ended."""
    from ghost.actions import query as views
    from ghost.cli import render
    from ghost.state import task_json

    observed = views.status(task_id, at)
    used = _usage([observed.task]) if wide and at is None else {}
    if json_:
        as_json(_with_usage(task_json.task(observed.task, observed), used, observed.task.id,
                            wide))
    else:
        out(render.status_lines(observed, used.get(observed.task.id)))
    warn(views.skipped_note())


# -- log -----------------------------------------------------------------------------------

@click.command()
@click.argument("task_ids", nargs=-1, required=True, type=TASK_ID)
@click.option("-n", "--tail", type=click.IntRange(min=0), default=None,
              help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing output until the task ends.")
@click.option("--attempt", type=click.IntRange(min=1), default=None, metavar="N",
              help="Only the output of attempt N (see `ghost restart`); default: all.")
@log_filter_options
def log(task_ids: Sequence[str], tail: int | None, follow: bool, attempt: int | None,
        **filters: Any) -> None:
    """Print a task's output, byte for byte."""
    if any(filters.values()):  # --timestamps/--since/--until/--stream: the chunk index
        from ghost.cli.logview import show

        show(task_ids, tail, follow, **filters)
        return
    if attempt is not None:
        from ghost.cli.supervise import attempt_log

        attempt_log(task_ids, attempt, tail)
        return
    if follow:
        from ghost.cli.live import follow_logs

        follow_logs(task_ids, tail)
        return
    from ghost.actions.query import read_log
    from ghost.text import escape

    stdout = sys.stdout.buffer
    for ident in task_ids:
        task, chunks = read_log(ident, tail)
        if len(task_ids) > 1:
            click.echo(f"==> {escape(task.id)} <==", err=True)
        for chunk in chunks:
            stdout.write(chunk)
        stdout.flush()


# -- stop / kill / cleanup -----------------------------------------------------------------

def _stop(task_id: str, force: bool, timeout: float, json_: bool) -> None:
    from ghost.actions.stop import stop

    task = stop(task_id, force=force, timeout=timeout, via=VIA)
    if json_:
        from ghost.state import task_json

        as_json(task_json.task(task))  # the real end: status, exit_code, signal
    else:
        from ghost.cli.render import stop_line

        out(stop_line(task, force, timeout))


@click.command()
@click.argument("task_id", type=TASK_ID, required=False)
@group_option("Stop every task of GROUP at once (one line per task).")
@click.option("-f", "--force", is_flag=True, help="SIGKILL at once instead of SIGTERM.")
@click.option("-t", "--timeout", type=STOP_TIMEOUT, default=10.0, show_default=True,
              metavar="SECONDS", help="Seconds to wait after SIGTERM before SIGKILL (at most "
              "86400).")
@click.option("--json", "json_", is_flag=True, help="Print the ended task as JSON.")
def stop(task_id: str | None, group: str | None, force: bool, timeout: float,
         json_: bool) -> None:
    """Stop a task's whole process group: SIGTERM, then SIGKILL after the timeout."""
    if not stop_or_group(task_id, group, force, timeout, json_):
        _stop(str(task_id), force, timeout, json_)


@click.command()
@click.argument("task_id", type=TASK_ID, required=False)
@group_option("Kill every task of GROUP at once.")
@click.option("--json", "json_", is_flag=True, help="Print the ended task as JSON.")
def kill(task_id: str | None, group: str | None, json_: bool) -> None:
    """Kill a task's process group at once (stop --force)."""
    if not stop_or_group(task_id, group, True, 0.0, json_):
        _stop(str(task_id), True, 0.0, json_)


@click.command()
@click.option("-d", "--days", type=CLEANUP_DAYS, default=30, show_default=True, metavar="DAYS",
              help="Only tasks that finished more than this many days ago (at most 36500).")
@click.option("-a", "--all", "everything", is_flag=True, help="Every finished task.")
@click.option("-s", "--status", default="all", show_default=True,
              help="Only tasks with this status: exited, killed, unknown or all.")
@click.option("-n", "--dry-run", is_flag=True, help="Show what would be deleted.")
@group_option("Only tasks of GROUP (queued or restarting ones too: cleanup cancels them).")
def cleanup(days: float, everything: bool, status: str, dry_run: bool,
            group: str | None) -> None:
    """Remove finished tasks from the list and delete their logs (history keeps them)."""
    from ghost.actions.cleanup import cleanup as run_cleanup
    from ghost.cli.render import table

    result = run_cleanup(days, everything, status, dry_run, via=VIA, group=group)
    # S0's (skanehira/ghost) own lines, word for word
    if not result.tasks:
        out("No tasks found matching cleanup criteria.")
    elif dry_run:
        out(f"The following {len(result.tasks)} task(s) would be deleted:")
        out(table(result.tasks))
    else:
        out(f"Successfully deleted {len(result.tasks)} task(s).")
        if everything:
            out("Deleted all finished tasks regardless of age.")


COMMANDS = (run, list_, status, log, stop, kill, cleanup)
