"""The live commands' rendering: `log -f`, `list --watch` and `wait` (core in ghost.actions.follow).

Imported only when one of them runs, so watchfiles and tabulate stay off the run/list path.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click

from ghost.actions.follow import Ended, Output, follow_output, watch_tasks
from ghost.actions.wait import combined_status, short_id, wait_for_end
from ghost.cli.options import TASK_ID, WAIT_TIMEOUT
from ghost.errors import TIMEOUT, GhostError
from ghost.state.tasks import describe_end
from projections.tasks import Task

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen: redraw in place like watch(1)


@contextmanager
def ctrl_c_exits() -> Iterator[None]:
    """Ctrl+C ends a live command with exit 130 and nothing on stderr (click itself would
    print a newline on its way to Abort)."""
    try:
        yield
    except KeyboardInterrupt:
        raise click.exceptions.Exit(130) from None


def end_note(task: Task) -> str:
    """The one stderr line saying how a task ended (shared by `log -f` and `wait`)."""
    if task.status in ("exited", "killed"):
        how = describe_end(task)
    else:
        how = f"ended, exit code unknown ({task.lost_reason or 'its end was not observed'})"
    from ghost.text import escape  # a lost reason or id is a stored string

    return escape(f"ghost: task {short_id(task.id)} {how}")


def stdout_closed() -> bool:
    """True once the reader of our stdout pipe is gone (`| head`): the pipe reports POLLERR."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(mask & (select.POLLERR | select.POLLNVAL) for _, mask in poller.poll(0))
    except (OSError, ValueError):
        return False


def prefixed(prefix: bytes, data: bytes) -> bytes:
    """Every line of `data` (whole lines, maybe a final partial one) behind `prefix`."""
    lines = data.split(b"\n")
    tail = lines.pop()
    out = b"".join(prefix + line + b"\n" for line in lines)
    return out + (prefix + tail + b"\n" if tail else b"")


def follow_logs(task_ids: Sequence[str], tail: int | None) -> None:
    """`ghost log -f`: the tasks' bytes as written; with several tasks, each line prefixed."""
    stdout = sys.stdout.buffer
    several = len(task_ids) > 1
    with ctrl_c_exits():
        for item in follow_output(task_ids, tail, lines=several, stop=stdout_closed):
            if isinstance(item, Output):
                data = prefixed(f"{short_id(item.task_id)} | ".encode(), item.data) \
                    if several else item.data
                stdout.write(data)
                stdout.flush()
            elif isinstance(item, Ended):
                click.echo(end_note(item.task), err=True)
    _quiet_if_closed()


def _quiet_if_closed() -> None:
    """Stopped because the reader went away: let the interpreter's final flush go nowhere."""
    if stdout_closed():
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)


def watch_list(status: str) -> None:
    """`ghost list --watch`: redraw in place on a terminal, else one table per change."""
    from ghost.cli.render import table

    on_terminal = sys.stdout.isatty()
    with ctrl_c_exits():
        for tasks in watch_tasks(status, stop=stdout_closed):
            text = table(tasks)
            if on_terminal:
                header = (f"ghost list --watch (status: {status}) · {len(tasks)} task(s) · "
                          f"updated {time.strftime('%H:%M:%S')} · Ctrl+C to quit")
                sys.stdout.write(f"{CLEAR}{header}\n\n{text}\n")
            else:
                sys.stdout.write(f"{text}\n\n")
            sys.stdout.flush()
    _quiet_if_closed()


WAIT_HELP = """Wait until every TASK_ID has ended, then exit with its exit code.

\b
Exit status:
  the task's own exit code (several tasks: the first non-zero, in argument order)
  128+N   a task was killed by signal N (like a shell: SIGKILL -> 137)
  1       a task's end is unknown (its monitor died) or a task is not found
  124     --timeout expired; an Error: line names the tasks still running
  130     interrupted (Ctrl+C)

A task that has already ended returns at once. One line per task on stderr says how it ended
(unless --quiet); nothing is printed on stdout.
"""


@click.command(name="wait", help=WAIT_HELP, context_settings={"help_option_names": ["-h",
                                                                                    "--help"]})
@click.argument("task_ids", nargs=-1, required=False, type=TASK_ID)
@click.option("-g", "--group", default=None, metavar="GROUP",
              help="Wait for every task of GROUP (instead of TASK_IDs).")
@click.option("-t", "--timeout", type=WAIT_TIMEOUT, default=None, metavar="SECONDS",
              help="Give up after this many seconds (exit 124; at most a year).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on stderr about how tasks ended.")
@click.pass_context
def wait_command(ctx: click.Context, task_ids: Sequence[str], group: str | None,
                 timeout: float | None, quiet: bool) -> None:
    if group is not None or not task_ids:
        from ghost.actions.wait import group_ids

        task_ids = group_ids(group, task_ids)
    with ctrl_c_exits():
        result = wait_for_end(task_ids, timeout)
    if result.timed_out:
        still = ", ".join(t.id for t in result.running)
        raise GhostError(f"timed out after {timeout:g}s; still running: {still}", TIMEOUT)
    if not quiet:
        for task in result.tasks:
            click.echo(end_note(task), err=True)
    ctx.exit(combined_status(result.tasks))
