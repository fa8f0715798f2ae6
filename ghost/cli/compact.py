"""`ghost compact`: render ghost.actions.compact."""

from __future__ import annotations

import click

from ghost.actions.compact import compact
from ghost.cli.render import dumps


def size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 100_000 else f"{count / 1e3:.1f} kB"


@click.command(name="compact")
@click.option("--json", "json_", is_flag=True, help="Print the sizes as a JSON object.")
def compact_command(json_: bool) -> None:
    """Give the space of cleaned tasks back: rewrite the event store without free pages.

    Every event and view stays as it is; commands running meanwhile wait for it (seconds).
    """
    from ghost.text import escape

    done = compact(via="cli")
    if json_:
        click.echo(dumps({"store": done.store, "before": done.before, "after": done.after}))
        return
    click.echo(f"Compacted the event store in {escape(done.store)}: {size(done.before)} -> "
               f"{size(done.after)} ({size(max(done.before - done.after, 0))} given back)")
