"""Supervision on the command line: `run`'s --name/--group/--key/--restart/--after options,
`-g GROUP` for the lifecycle commands, and `ghost restart`.

The options are plain click declarations (imported with the lifecycle commands, so they cost
nothing more); everything else is imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from ghost.cli.options import STOP_TIMEOUT, TASK_ID

F = TypeVar("F", bound=Callable[..., Any])
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
VIA = "cli"

IDENT_HELP = ("ID is a task id, a unique prefix of one (4+ characters) or a task name; an id or "
              "a unique prefix wins over a name, and a name means the newest task with it.")

_RUN_OPTIONS = (
    click.option("--name", default=None, metavar="NAME",
                 help="Name the task (letters, digits, . _ -; up to 64). Refused while another "
                      "task with this name is running. Usable wherever a task id is: an exact "
                      "id or a unique id prefix wins over a name, which means the newest task "
                      "with it."),
    click.option("-g", "--group", default=None, metavar="GROUP",
                 help="Put the task in GROUP (default: default), for list/stop/kill/wait/"
                      "cleanup/restart -g."),
    click.option("--key", default=None, metavar="KEY",
                 help="Idempotent run: if a task with KEY exists (not cleaned up), print it "
                      "and start nothing."),
    click.option("--restart", "restart", default=None,
                 type=click.Choice(["no", "on-failure", "always", "unless-stopped"]),
                 help="Restart policy (default: no)."),
    click.option("--max-restarts", type=int, default=None, metavar="N",
                 help="Give up after N restarts (default: 10 for on-failure, unlimited for "
                      "always)."),
    click.option("--restart-delay", default=None, metavar="DURATION",
                 help="First restart delay (default 100ms), doubled after each quick crash up "
                      "to 30s."),
    click.option("--min-uptime", default=None, metavar="DURATION",
                 help="An attempt up this long resets the delay (default 10s)."),
    click.option("--after", multiple=True, metavar="ID[,ID...]",
                 help="Queue the task until these tasks have exited with code 0 (if one fails, "
                      "it never runs)."),
    click.option("--after-any", multiple=True, metavar="ID[,ID...]",
                 help="Queue the task until any of these tasks has ended, however."),
)


def supervision_options(f: F) -> F:
    for option in reversed(_RUN_OPTIONS):
        f = option(f)
    return f


def group_option(help_: str) -> Callable[[F], F]:
    return click.option("-g", "--group", default=None, metavar="GROUP", help=help_)


def need_one(ident: str | None, group: str | None) -> None:
    from ghost.errors import USAGE, GhostError

    if (ident is None) == (group is None):
        raise GhostError("give a task id or name, or -g GROUP (one of them)", USAGE)


def render_results(results: Sequence[Any], json_: bool, verb: str,
                   stopped: tuple[bool, float] | None = None) -> None:
    """One line per task (or a JSON array); exit 1 unless every task succeeded.

    `stopped` (force, timeout) marks `stop -g`/`kill -g`: their tasks get `stop`'s own S0 line."""
    from ghost.cli import render
    from ghost.cli.lifecycle import as_json, out
    from ghost.state import task_json
    from ghost.text import escape

    if json_:
        as_json([{**task_json.task(r.task), "ok": r.ok, **({"error": r.error} if r.error
                                                             else {})} for r in results])
    else:
        for r in results:
            if r.ok and stopped is not None and not r.verb:
                out(render.stop_line(r.task, *stopped))
            elif r.ok:
                out(f"Task {escape(r.task.id)} has been {escape(r.verb or verb)}")
            else:
                click.echo(f"Error: task {escape(r.task.id)}: {escape(r.error)}", err=True)
    if not results:
        click.echo("No tasks found in this group.", err=True)
    if any(not r.ok for r in results):
        raise click.exceptions.Exit(1)


@click.command(context_settings=CONTEXT, epilog=IDENT_HELP)
@click.argument("task_id", required=False, type=TASK_ID)
@group_option("Restart every task of GROUP.")
@click.option("-t", "--timeout", type=STOP_TIMEOUT, default=10.0, show_default=True,
              metavar="SECONDS", help="Seconds to wait after SIGTERM before SIGKILL, for a "
              "running task (at most 86400).")
@click.option("--json", "json_", is_flag=True, help="Print the restarted task(s) as JSON.")
def restart_command(task_id: str | None, group: str | None, timeout: float,
                    json_: bool) -> None:
    """Restart a task: stop it if it runs (like `stop`), then start the same command again.

    The task keeps its id, name, group and policy; its log continues (`log --attempt N`)."""
    from ghost.actions.restart import restart, restart_group
    from ghost.cli import render
    from ghost.cli.lifecycle import as_json, out
    from ghost.state import task_json

    need_one(task_id, group)
    if group is not None:
        render_results(restart_group(group, timeout=timeout, via=VIA), json_, "restarted")
        return
    assert task_id is not None
    started = restart(task_id, timeout=timeout, via=VIA)
    if json_:
        as_json(task_json.started(started))
    else:
        out(render.started_block(started))


def stop_or_group(task_id: str | None, group: str | None, force: bool, timeout: float,
                  json_: bool) -> bool:
    """`stop -g` / `kill -g`: handled here (True); a single task is left to `stop` (False)."""
    need_one(task_id, group)
    if group is None:
        return False
    from ghost.actions.group import stop_group

    results = stop_group(group, force=force, timeout=timeout, via=VIA)
    render_results(results, json_, "killed" if force else "exited", (force, timeout))
    return True


def attempt_log(task_ids: Sequence[str], attempt: int, tail: int | None) -> None:
    """`log --attempt N`: the bytes attempt N wrote, from its start offset to the next one's."""
    from ghost.actions.restart import read_attempt
    from ghost.cli.logview import write_logs

    write_logs(task_ids, lambda ident: read_attempt(ident, attempt, tail))


def attempt_note(data: Any) -> str:
    """`spawned`'s attempt and name for `history` ("" for a first, unnamed attempt)."""
    attempt = data.get("attempt")
    parts = [f"attempt {attempt}" if isinstance(attempt, int) and attempt > 1 else "",
             f"name {data['name']}" if isinstance(data.get("name"), str) else ""]
    return ", ".join(p for p in parts if p)


def supervision_details(kind: str, data: Any) -> str | None:
    """One `history` line for the supervision events (None: not one of them)."""
    from ghost.cli.render import clock

    if kind == "queued":
        which = "any of" if data.get("any") else "all of"
        return f"waiting for {which} {', '.join(str(a)[:8] for a in data['after'])}"
    if kind == "restart_scheduled":
        return (f"attempt {data['attempt']} at {clock(data['at_ns'])} (in "
                f"{data['delay_ms']} ms): {data['reason']}")
    if kind == "restart_requested":
        return "restart by hand"
    if kind == "gave_up":
        return f"gave up after {data['restarts']} restarts"
    return None
