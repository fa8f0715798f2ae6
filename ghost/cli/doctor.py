"""`ghost doctor`: render the report of ghost.actions.doctor, exit with its verdict."""

from __future__ import annotations

import click

from ghost.actions.doctor import MAX_LISTED, Report, verify
from ghost.cli.render import dumps


def summary(report: Report) -> str:
    if not report.store_exists and not report.file_problems:
        return f"No event store in {report.data_dir}: nothing recorded yet, nothing to verify."
    lines = [f"Data directory: {report.data_dir}"]
    if report.store_exists:
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
    problems = [*(f"corrupt event at seq {s}: {r}" for s, r in report.corrupt),
                *(f"missing seq {a}" + (f"..{b}" if b != a else "") for a, b in report.gaps),
                *report.index_problems, *report.view_problems, *report.file_problems]
    for text in problems[:MAX_LISTED * 3]:
        lines.append(f"Problem: {text}")
    if len(problems) > MAX_LISTED * 3:
        lines.append(f"... and {len(problems) - MAX_LISTED * 3} more problems")
    lines.append("OK: the event log, the views and the files are healthy" if not problems
                 else f"FAILED: {len(problems)} problem(s) found")
    return "\n".join(lines)


@click.command(name="doctor")
@click.option("--json", "json_", is_flag=True, help="Print the report as a JSON object.")
@click.pass_context
def doctor_command(ctx: click.Context, json_: bool) -> None:
    """Verify the event log (every event, the sequence, the index), the views and file modes.

    Exits 0 when healthy, 65 when the log or a view is damaged, 77 when files are unsafe.
    """
    report = verify()
    if json_:
        click.echo(dumps(report.to_json()))
    else:
        click.echo(summary(report))
    ctx.exit(report.exit_code)
