"""The task table: a line-API widget that draws one Strip per visible row.

DataTable renders every cell through Rich and keeps per-row bookkeeping (adding a row ~0.2 ms,
a cell render ~0.4 ms): with 1,000 tasks that was most of the first paint. Here a row is a
tuple of strings plus a style per column; its segments are built once, when the row first
becomes visible after it changed (or after the column widths changed), and only the rows on
screen are ever built. The cursor, zebra stripes and the header are styles laid over those
segments when a line is drawn.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from projections.tasks import Task

PAD = 1  # blank cells on each side of a column's text (as DataTable's cell_padding)
SIDE_STEP = 8  # columns moved by Left / Right


class Row(NamedTuple):
    """What one line shows: a string per column, a Rich style string per column, and the
    cells' widths (measured once per row: measuring 1,000 rows at each redraw cost ~15 ms)."""

    cells: tuple[str, ...]
    styles: tuple[str, ...]
    widths: tuple[int, ...]


def make_row(cells: tuple[str, ...], styles: tuple[str, ...]) -> Row:
    return Row(cells, styles, tuple(map(cell_len, cells)))


class Looks(NamedTuple):
    """The styles lines are drawn with, looked up once per frame (not once per line)."""

    base: Style
    header: Style
    even: Style
    cursor: Style


def status_style(task: Task) -> str:
    if task.running:
        return "bold green"
    if task.status == "exited":
        return "green" if task.exit_code == 0 else "bold red"
    return "bold yellow" if task.status == "killed" else "magenta"


class TaskTable(ScrollView, can_focus=True):
    """Rows keyed by task id, a row cursor, a fixed header; scrolls both ways."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select", "Select", show=False),
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(0)", "Top", show=False),
        Binding("end", "edge(1)", "Bottom", show=False),
        Binding("left", "side(-1)", "Left", show=False),
        Binding("right", "side(1)", "Right", show=False),
    ]

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "task-table--header", "task-table--cursor", "task-table--even-row",
    }

    # The look of the DataTable it replaces (Textual 8.2's DataTable CSS, same tokens).
    DEFAULT_CSS = """
    TaskTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .task-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .task-table--header { background-tint: $foreground 5%; }
        }
        &:dark > .task-table--even-row { background: $surface-darken-1 40%; }
        & > .task-table--header { text-style: bold; background: $panel; color: $foreground; }
        &:ansi > .task-table--header { background: ansi_bright_blue; color: ansi_default; }
        & > .task-table--even-row { background: $surface-lighten-1 50%; }
        & > .task-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """

    class RowSelected(Message):
        """Enter (or a click on the cursor's row): the row's task id."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    class HeaderSelected(Message):
        """A click on a column's header: the column's key."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self, columns: tuple[tuple[str, str], ...], *, id: str | None = None) -> None:
        """`columns`: (key, label) pairs, in order."""
        super().__init__(id=id)
        self.column_keys = tuple(key for key, _ in columns)
        self.labels = tuple(label for _, label in columns)
        self.widths = tuple(cell_len(label) for label in self.labels)
        self.keys: list[str] = []
        self.rows: dict[str, Row] = {}
        self._index: dict[str, int] = {}
        # task id -> (its row's segments, how it was last drawn, the line drawn): kept until
        # the row or the column widths change.
        self._lines: dict[str, tuple[list[Segment], tuple[Any, ...], Strip]] = {}
        self._header: list[Segment] | None = None
        self._looks: Looks | None = None
        self.cursor_row = 0

    # -- data -------------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.keys)

    @property
    def cursor_key(self) -> str | None:
        return self.keys[self.cursor_row] if 0 <= self.cursor_row < len(self.keys) else None

    def get_cell(self, key: str, column: str) -> str:
        return self.rows[key].cells[self.column_keys.index(column)]

    def set_rows(self, keys: list[str], rows: dict[str, Row], keep: str | None = None) -> None:
        """Show `keys` in this order (`rows` has a Row for each). Rows that did not change keep
        their built segments; the cursor stays on `keep` (or the cursor's task) if still shown."""
        keep = keep if keep is not None else self.cursor_key
        widths = tuple(map(max, zip(*(rows[k].widths for k in keys),
                                     map(cell_len, self.labels), strict=True)))
        if widths != self.widths:
            self.widths = widths
            self._lines.clear()
            self._header = None
        else:
            old = self.rows
            for key in keys:
                if old.get(key) != rows[key]:
                    self._lines.pop(key, None)
        self.keys = keys
        self.rows = rows
        self._index = {key: i for i, key in enumerate(keys)}
        if len(self._lines) > 4 * max(len(keys), 64):  # rows no longer shown, once in a while
            self._lines = {k: v for k, v in self._lines.items() if k in self._index}
        row = self._index.get(keep, self.cursor_row) if keep is not None else 0
        self.cursor_row = max(0, min(row, len(keys) - 1))
        self.virtual_size = Size(sum(w + 2 * PAD for w in widths), len(keys) + 1)
        self.refresh()
        self._cursor_into_view()

    def update_rows(self, changed: dict[str, Row]) -> bool:
        """Rows whose cells changed, in place (same order). False (nothing done) when one is
        now wider than its column: the caller sets the rows again."""
        for row in changed.values():
            if any(c > w for c, w in zip(row.widths, self.widths, strict=True)):
                return False
        for key, row in changed.items():
            self.rows[key] = row
            self._lines.pop(key, None)
            if key in self._index:
                self.refresh_line(self._index[key] + 1)
        return True

    # -- cursor -------------------------------------------------------------------------

    def move_cursor(self, row: int, animate: bool = False) -> None:
        """(`animate` is accepted for DataTable's signature; moves are never animated.)"""
        row = max(0, min(row, len(self.keys) - 1))
        if row != self.cursor_row:
            self.refresh_line(self.cursor_row + 1)
            self.cursor_row = row
            self.refresh_line(row + 1)
        self._cursor_into_view()

    def _cursor_into_view(self) -> None:
        seen = max(1, self.scrollable_content_region.height - 1)  # rows below the header
        top = round(self.scroll_y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False)
        elif self.cursor_row >= top + seen:
            self.scroll_to(y=self.cursor_row - seen + 1, animate=False)

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)

    def on_resize(self, event: events.Resize) -> None:
        self._cursor_into_view()

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * self.page)

    def action_edge(self, bottom: int) -> None:
        self.move_cursor(len(self.keys) - 1 if bottom else 0)

    def action_side(self, direction: int) -> None:
        self.scroll_to(x=self.scroll_x + direction * SIDE_STEP, animate=False)

    def action_select(self) -> None:
        if self.cursor_key is not None:
            self.post_message(self.RowSelected(self.cursor_key))

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = offset.x + round(self.scroll_x)
            for key, width in zip(self.column_keys, self.widths, strict=True):
                x -= width + 2 * PAD
                if x < 0:
                    self.post_message(self.HeaderSelected(key))
                    return
            return
        row = offset.y - 1 + round(self.scroll_y)
        if row < len(self.keys):
            if row == self.cursor_row:
                self.action_select()
            else:
                self.move_cursor(row)

    # -- drawing ------------------------------------------------------------------------

    def _segments(self, cells: tuple[str, ...], styles: tuple[str, ...]) -> list[Segment]:
        """A row's text, padded to the column widths; neighbouring plain cells in one segment."""
        out: list[Segment] = []
        plain: list[str] = []
        pad = " " * PAD
        for text, style, width in zip(cells, styles, self.widths, strict=True):
            cell = pad + set_cell_size(text, width) + pad
            if style:
                if plain:
                    out.append(Segment("".join(plain)))
                    plain = []
                out.append(Segment(cell, Style.parse(style)))
            else:
                plain.append(cell)
        if plain:
            out.append(Segment("".join(plain)))
        return out

    def render_lines(self, crop: Region) -> list[Strip]:
        self._looks = Looks(self.rich_style,
                            *map(self.get_component_rich_style, ("task-table--header",
                                                                 "task-table--even-row",
                                                                 "task-table--cursor")))
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        looks = self._looks or Looks(self.rich_style, Style(), Style(), Style())
        x = round(self.scroll_x)
        if y == 0:
            if self._header is None:
                self._header = self._segments(self.labels, ("",) * len(self.labels))
            return self._strip(self._header, looks.base + looks.header, None, x, width)
        row = y - 1 + round(self.scroll_y)
        if row >= len(self.keys):
            return Strip.blank(width, looks.base)
        key = self.keys[row]
        kind = 2 if row == self.cursor_row else row % 2
        seen = self._lines.get(key)
        if seen is not None and seen[1] == (kind, x, width, looks):
            return seen[2]  # the same row drawn the same way (it moved up or down, maybe)
        if seen is not None:
            segments = seen[0]
        else:
            found = self.rows[key]
            segments = self._segments(found.cells, found.styles)
        if kind == 2:  # the cursor's colours win over a cell's own (as in DataTable)
            strip = self._strip(segments, looks.base, looks.cursor, x, width)
        else:
            under = looks.base if kind else looks.base + looks.even
            strip = self._strip(segments, under, None, x, width)
        self._lines[key] = (segments, (kind, x, width, looks), strip)
        return strip

    @staticmethod
    def _strip(segments: list[Segment], under: Style, over: Style | None, x: int,
               width: int) -> Strip:
        top = over if over is not None else Style()
        styled = [Segment(text, (under + style if style else under) + top)
                  for text, style, _ in segments]
        return Strip(styled).crop_extend(x, x + width, under + top)

    def refresh_line(self, y: int) -> None:
        """Line `y` of the content (0 is the header, row i is i + 1) when it is on screen."""
        top = round(self.scroll_y)
        if y == 0 or top < y <= top + self.size.height:
            self.refresh(Region(0, y - top if y else 0, self.size.width, 1))
