"""The task table widget and its cells (ghost.tui.tasks fills it)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.geometry import Size
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from projections.tasks import Task

FIRST_ROWS = 150  # more than a screen holds: drawn first
MORE_ROWS = 500  # then added this many at a time, between refreshes
IN_PLACE = 50  # up to this many rows added or removed, the table is changed in place


class TaskTable(DataTable[Text]):
    """A DataTable whose columns all have fixed widths (TasksScreen._rebuild measures the
    strings itself): DataTable would still measure every new cell through Rich after each
    rebuild, which is most of the first paint with 1,000 tasks. Only the scrollable size is
    left to compute (the tail of DataTable._update_dimensions, Textual 8.2)."""

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        if any(col.auto_width for col in self.columns.values()) or any(
                row.label is not None or row.auto_height for row in self.rows.values()):
            super()._update_dimensions(new_rows)
            return
        width = sum(col.get_render_width(self) for col in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width + self._row_label_column_width,
                                 self._total_row_height + header)


def _status_style(task: Task) -> str:
    if task.running:
        return "bold green"
    if task.status == "exited":
        return "green" if task.exit_code == 0 else "bold red"
    return "bold yellow" if task.status == "killed" else "magenta"


class IdText(Text):
    """The id cell also carries the full task id: DataTable.sort hands its key function cell
    values, not row keys, and rows are put in order by task id."""

    task_id = ""


def cell_text(key: str, value: str, task: Task) -> Text:
    """A cell as Text: DataTable would read a plain str as markup (a command with `[b]`)."""
    if key == "id":
        cell = IdText(value, no_wrap=True)
        cell.task_id = task.id
        return cell
    return Text(value, style=_status_style(task) if key == "status" else "", no_wrap=True)
