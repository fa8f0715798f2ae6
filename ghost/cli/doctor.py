"""`ghost doctor`: render the report of ghost.actions.doctor, exit with its verdict."""

from __future__ import annotations

import click

from ghost.actions.doctor import MAX_LISTED, Report, verify
from ghost.cli.render import dumps


def summary(report: Report) -> str:
    if not report.store_exists and not report.file_problems:
        return f"No event store in {report.data_dir}: nothing recorded yet, nothing to verify."
    lines = [f"Data directory: {report.data_dir}"]
    if report.store_exists and report.store_problems and not report.events:
        lines.append("Events: none could be read")
    elif report.store_exists:
        gaps = "no gaps" if not report.gaps else f"{len(report.gaps)} gap(s)"
        lines.append(f"Events: {report.events} (seq 1..{report.last_seq}, {gaps})")
        unknown = sum(len(v) for v in report.unknown.values())
        kinds = ", ".join(f"{k} x{len(v)}" for k, v in sorted(report.unknown.items()))
        lines.append(f"Unknown events (from a newer ghost, skipped): {unknown}"
                     + (f" ({kinds})" if kinds else ""))
        lines.append(f"Corrupt events (skipped): {len(report.corrupt)}")
        applied = ("none stored (rebuilt by the next write)" if report.view_applied is None
                   else f"stored up to seq {report.view_applied}")
        lines.append(f"Tasks in view: {report.tasks}; task view {applied}")
    lines.append(f"Files checked: {report.files_checked}")
    problems = [*report.store_problems,
                *(f"corrupt event at seq {s}: {r}" for s, r in report.corrupt),
                *(f"missing seq {a}" + (f"..{b}" if b != a else "") for a, b in report.gaps),
                *report.index_problems, *report.view_problems, *report.file_problems,
                *(f"log of a task the store does not know: {p}" for p in report.orphan_logs)]
    for text in problems[:MAX_LISTED * 3]:
        lines.append(f"Problem: {text}")
    if len(problems) > MAX_LISTED * 3:
        lines.append(f"... and {len(problems) - MAX_LISTED * 3} more problems")
    lines.append("OK: the event log, the views and the files are healthy" if not problems
                 else f"FAILED: {len(problems)} problem(s) found")
    if report.store_problems or report.orphan_logs:
        lines.append("To recover: restore the store from a backup, or run `ghost doctor "
                     "--salvage` (copies every readable event into a new store)")
    return "\n".join(lines)


@click.command(name="doctor")
@click.option("--json", "json_", is_flag=True, help="Print the report as a JSON object.")
@click.option("--salvage", is_flag=True,
              help="Copy every readable event into a new store; keep the damaged one aside.")
@click.pass_context
def doctor_command(ctx: click.Context, json_: bool, salvage: bool) -> None:
    """Verify the event log (every event, the sequence, the index), the views and file modes.

    Exits 0 when healthy, 65 when the log or a view is damaged, 77 when files are unsafe.
    With --salvage, rebuild a damaged store from what can still be read.
    """
    if salvage:
        from ghost.actions.salvage import salvage as run_salvage
        from ghost.text import escape

        done = run_salvage(via="cli")
        if json_:
            click.echo(dumps(done._asdict()))
        else:
            click.echo(f"Salvaged {done.recovered} event(s) into a new store in "
                       f"{escape(done.store)} (read through {done.method}; "
                       f"{done.unreadable} unreadable left out)")
            if done.unreadable:
                click.echo("Events are numbered anew: a reader of `ghost events --from SEQ` "
                           "should read again from the start")
            click.echo(f"The damaged store is kept at {escape(done.kept_at)}"
                       + (f", with {done.orphan_logs} log(s) of tasks no readable event names"
                          if done.orphan_logs else ""))
        return
    from ghost.text import escape_lines

    report = verify()
    if json_:
        click.echo(dumps(report.to_json()))
    else:
        click.echo(escape_lines(summary(report)))
    ctx.exit(report.exit_code)
