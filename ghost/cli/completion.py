"""`ghost completion bash|zsh|fish`, and the task ids (and names) a shell completes.

The script is click's own (it calls `ghost` back with `_GHOST_COMPLETE` set); completing a
task argument reads the ids straight from the task view through the `list` cache
(ghost.state.listing): no reconciliation, nothing written, and only the tasks the command can
act on — running ones for stop/kill/send/..., every task for log/status/history.
"""

from __future__ import annotations

import click
from click.shell_completion import CompletionItem, get_completion_class

SHELLS = ("bash", "zsh", "fish")
# Commands that act on running tasks only; every other command completes every task.
RUNNING_ONLY = frozenset({"stop", "kill", "send", "resize", "attach", "wait"})
RC_LINES = {
    "bash": 'eval "$(ghost completion bash)"            # in ~/.bashrc',
    "zsh": 'eval "$(ghost completion zsh)"             # in ~/.zshrc',
    "fish": "ghost completion fish | source             # in ~/.config/fish/config.fish",
}
HELP = """Print the shell completion script for SHELL (bash, zsh or fish).

\b
Add one line to your shell's start-up file:
  {bash}
  {zsh}
  {fish}

Task arguments then complete to task ids and names: running tasks for stop, kill and send,
every task for log, status and history.
""".format(**RC_LINES)


@click.command(name="completion", help=HELP,
               context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("shell", type=click.Choice(SHELLS))
def completion_command(shell: str) -> None:
    from ghost.cli.main import cli

    script = get_completion_class(shell)
    assert script is not None  # every one of SHELLS is built into click
    click.echo(script(cli, {}, "ghost", "_GHOST_COMPLETE").source())


def task_items(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """Ids and names starting with `incomplete`, newest first, each with its command line."""
    from ghost.errors import GhostError

    command = ctx.command.name or ""
    try:
        found = _tasks(running_only=command in RUNNING_ONLY)
    except GhostError:
        return []  # no usable data dir or store: nothing to offer, and no error in a prompt
    items = []
    for task in found:
        about = f"{task.status}: {task.command}"
        if task.id.startswith(incomplete):
            items.append(CompletionItem(task.id, help=about))
        if task.name and task.name.startswith(incomplete):
            items.append(CompletionItem(task.name, help=about))
    return items


def _tasks(running_only: bool) -> list[_Candidate]:
    from ghost.state import listing
    from ghost.state.store import open_store, store_errors
    from ghost.text import shell_line

    store = open_store(write=False)
    if store is None:
        return []
    with store_errors():
        found = listing.load(store)
    live = [_Candidate(t.id, t.name, t.status, shell_line(t.command), t.spawned_seq)
            for t in found.live.values() if not running_only or t.status == "running"]
    done = [] if running_only else [
        _Candidate(r.id, r.name, r.status, r.command, r.spawned_seq)
        for r in found.finished.values()]
    return sorted(live + done, key=lambda c: c.seq, reverse=True)


class _Candidate:
    __slots__ = ("id", "name", "status", "command", "seq")

    def __init__(self, id: str, name: str, status: str, command: str, seq: int) -> None:
        self.id, self.name, self.status, self.command, self.seq = id, name, status, command, seq
