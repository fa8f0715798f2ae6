"""`ghost log --timestamps/--since/--until/--stream [-f]`: a pumped task's output through its
chunk index (ghost.actions.logread). Loaded only when one of these flags is given."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click

from ghost.actions.logread import Options, follow, read


def show(task_ids: Sequence[str], tail: int | None, follow_: bool, timestamps: bool = False,
         since: str | None = None, until: str | None = None, stream: str | None = None) -> None:
    options = Options(timestamps, since, until, stream)
    stdout = sys.stdout.buffer
    if follow_:
        from ghost.actions.follow import Output
        from ghost.actions.wait import short_id
        from ghost.cli.live import ctrl_c_exits, end_note, prefixed

        several = len(task_ids) > 1
        with ctrl_c_exits():
            for item in follow(task_ids, tail, options):
                if isinstance(item, Output):
                    data = prefixed(f"{short_id(item.task_id)} | ".encode(), item.data) \
                        if several else item.data
                    stdout.write(data)
                    stdout.flush()
                else:
                    click.echo(end_note(item.task), err=True)
        return
    write_logs(task_ids, lambda ident: read(ident, tail, options))


def write_logs(task_ids: Sequence[str],
               read_one: Callable[[str], tuple[Any, Iterable[bytes]]]) -> None:
    """Each task's bytes to stdout as read, with a `==> id <==` header on stderr when several."""
    from ghost.text import escape

    stdout = sys.stdout.buffer
    for ident in task_ids:
        task, chunks = read_one(ident)
        if len(task_ids) > 1:
            click.echo(f"==> {escape(task.id)} <==", err=True)
        for chunk in chunks:
            stdout.write(chunk)
        stdout.flush()
