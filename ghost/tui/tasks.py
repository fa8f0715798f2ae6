"""The main screen: the live task table, its filters, search and sort, and the keys that act.

The table is redrawn from the task list the TaskFeed delivers (woken by commits, like `list
--watch`). Rows are keyed by task id, so the cursor stays on its task while rows come and go,
and a list whose order did not change is updated cell by cell instead of rebuilt.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from ghost.tui import model
from ghost.tui.table import FIRST_ROWS, IN_PLACE, MORE_ROWS, TaskTable, cell_text
from projections.tasks import Task


class TasksScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("tab", "filter(1)", "Filter", priority=True),
        Binding("shift+tab", "filter(-1)", "Filter back", show=False, priority=True),
        Binding("slash", "search", "Search"),
        Binding("s", "stop", "Stop"),
        Binding("ctrl+k,K", "kill", "Kill", key_display="^K"),
        Binding("n", "new", "New"),
        Binding("r", "rerun", "Rerun"),
        Binding("R", "restart", "Restart", show=False),
        Binding("i", "send", "Input", show=False),
        Binding("l", "log", "Log"),
        Binding("c", "cleanup", "Clean"),
        Binding("h", "history", "History"),
        Binding("t", "time_travel", "Time"),
        Binding("o", "sort(1)", "Sort"),
        Binding("O", "sort(0)", "Sort order", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "app.quit", "Quit"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("g", "edge(0)", "Top", show=False),
        Binding("G", "edge(1)", "Bottom", show=False),
        Binding("ctrl+d", "page(1)", "Page down", show=False),
        Binding("ctrl+u", "page(-1)", "Page up", show=False),
        Binding("escape", "escape", "Back", show=False),
    ]

    DEFAULT_CSS = """
    TasksScreen #bar { height: 1; padding: 0 1; background: $boost; }
    TasksScreen #tasks { height: 1fr; }
    TasksScreen #search { dock: bottom; display: none; }
    TasksScreen #search.open { display: block; }
    TasksScreen #empty { height: 1fr; content-align: center middle; display: none; }
    """

    def __init__(self, with_resources: bool = False) -> None:
        super().__init__()
        self.columns = model.columns(with_resources)
        self.keys = tuple(c.key for c in self.columns)
        self.tasks: dict[str, Task] = {}
        self.filter = "all"
        self.needle = ""
        self.sort_key = "started"
        self.reverse = True
        self.at: str | None = None  # time travel: the `--at` of the list shown
        self._shown: list[str] = []
        self._cells: dict[str, tuple[str, ...]] = {}
        self._widths: dict[str, int] = {}
        self.usage: dict[str, Any] = {}  # task id -> resources.Usage, while it runs
        self._generation = 0  # of the rows being added (see _add_rows)
        self._filling = False  # rows of the last rebuild are still being added
        self.loaded = False
        self._mounted = False
        self._received = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="bar")
            table = TaskTable(id="tasks", cursor_type="row", zebra_stripes=True)
            yield table
            yield Static("No tasks yet. Press n to start one.", id="empty")
            yield Input(placeholder="search command, name or id (Enter: keep, Esc: clear)",
                        id="search")
        yield Footer()

    def on_mount(self) -> None:
        self._mounted = True
        self.redraw()  # the first list may have come before the table existed
        self.loaded = self._received

    @property
    def table(self) -> TaskTable:
        return self.query_one("#tasks", TaskTable)

    # -- data ---------------------------------------------------------------------------

    def show_tasks(self, tasks: list[Task], at: str | None = None) -> None:
        """A new task list (live, or as of `at` in time travel)."""
        travelled = at != self.at
        self.tasks = {t.id: t for t in tasks}
        self.at = at
        self._received = True
        if self._mounted:
            self.redraw(full=travelled)
            self.loaded = True

    def selected(self) -> Task | None:
        table = self.table
        if not self._shown or table.cursor_row < 0 or table.cursor_row >= len(self._shown):
            return None
        return self.tasks.get(self._shown[table.cursor_row])

    def tick(self) -> None:
        """The clock moved (or usage was sampled): only running tasks' cells can change, and
        rows keep their order until the list itself changes (no re-sort, no re-filter)."""
        if self._filling:
            return
        now = model.Ctx(self.app.now_ns(), self.usage)  # type: ignore[attr-defined]
        changed = []
        for task_id in self._shown:
            task = self.tasks[task_id]
            if task.running:
                cells = model.row(task, now, self.columns)
                if cells != self._cells[task_id]:
                    changed.append((task, cells))
        if any(cell_len(c) > self._widths.get(k, 0)
               for _, cells in changed for k, c in zip(self.keys, cells, strict=True)):
            self.redraw()
        else:
            self._update(changed)

    def redraw(self, full: bool = False) -> None:
        """Show the tasks the filter, search and sort choose. A few rows more or fewer (a task
        started, one cleaned) are added, removed and re-sorted in place, and changed cells
        updated; a different list (`full`: a filter, a search; the first one) is rebuilt,
        its columns measured again."""
        now = model.Ctx(self.app.now_ns(), self.usage)  # type: ignore[attr-defined]
        chosen = model.select(self.tasks.values(), self.filter, self.needle, self.sort_key,
                              self.reverse, now, self.columns)
        ids = [t.id for t in chosen]
        old = set(self._shown)
        added = [t for t in chosen if t.id not in old]
        removed = old - set(ids)
        if full or self._filling or not self._shown or len(added) + len(removed) > IN_PLACE:
            self._rebuild(chosen, now)
            self._after_redraw(chosen)
            return
        changed = []
        for task in chosen:
            cells = model.row(task, now, self.columns)
            if self._cells.get(task.id) != cells:
                changed.append((task, cells))
        wider = any(cell_len(c) > self._widths.get(k, 0)
                    for _, cells in changed for k, c in zip(self.keys, cells, strict=True))
        if wider:
            self._rebuild(chosen, now)
        elif ids != self._shown or changed:
            self._in_place(ids, added, removed, changed)
        self._after_redraw(chosen)

    def _after_redraw(self, chosen: list[Task]) -> None:
        empty = self.query_one("#empty", Static)
        empty.display = not chosen
        self.table.display = bool(chosen)
        if not chosen and self.tasks:
            empty.update("No task matches this filter or search.")
        self._draw_bar()

    def _in_place(self, ids: list[str], added: list[Task], removed: set[str],
                  changed: list[tuple[Task, tuple[str, ...]]]) -> None:
        table = self.table
        current = self.selected()
        fresh = {t.id for t in added}
        for task_id in removed:
            table.remove_row(task_id)
            del self._cells[task_id]
        self._update([(t, c) for t, c in changed if t.id not in fresh])
        for task, cells in changed:
            if task.id in fresh:
                self._cells[task.id] = cells
                self._add_row(task)
        if ids != [k for k in self._shown if k not in removed] + [t.id for t in added]:
            order = {task_id: i for i, task_id in enumerate(ids)}
            table.sort("id", key=lambda cell: order[cell.task_id])
        self._shown = ids
        if current is not None and current.id in self._cells:
            table.move_cursor(row=ids.index(current.id), animate=False)

    def _add_row(self, task: Task) -> None:
        cells = self._cells[task.id]
        self.table.add_row(*(cell_text(key, value, task)
                             for key, value in zip(self.keys, cells, strict=True)), key=task.id)

    def _update(self, changed: list[tuple[Task, tuple[str, ...]]]) -> None:
        table = self.table
        for task, cells in changed:
            old = self._cells[task.id]
            for key, new, was in zip(self.keys, cells, old, strict=True):
                if new != was:
                    table.update_cell(task.id, key, cell_text(key, new, task))
            self._cells[task.id] = cells

    def _rebuild(self, chosen: list[Task], now: model.Ctx) -> None:
        """Every row again. Column widths are measured here, once, from the strings: DataTable
        would measure each cell through Rich (~0.2 ms each: 1.4 s for 1,000 tasks)."""
        table = self.table
        current = self.selected()
        self._cells = {t.id: model.row(t, now, self.columns) for t in chosen}
        widths = {col.key: max([cell_len(col.label), *(cell_len(cells[i]) for cells
                                                        in self._cells.values())])
                  for i, col in enumerate(self.columns)}
        if widths != self._widths:
            table.clear(columns=True)
            for col in self.columns:
                table.add_column(col.label, key=col.key, width=widths[col.key])
            self._widths = widths
        else:
            table.clear()
        self._shown = [t.id for t in chosen]
        self._generation += 1
        self._add_rows(chosen[:FIRST_ROWS], self._generation, chosen[FIRST_ROWS:],
                       current.id if current is not None else None)

    def _add_rows(self, rows: list[Task], generation: int, rest: list[Task],
                  current: str | None) -> None:
        """Rows in slices: the first screenful is drawn before the rest are added (adding
        a row to a DataTable costs ~0.2 ms: 1,000 at once would delay the first paint)."""
        if generation != self._generation:
            return  # a newer rebuild replaced these rows
        table = self.table
        for task in rows:
            self._add_row(task)
        self._filling = bool(rest)
        if rest:
            self.call_after_refresh(self._add_rows, rest[:MORE_ROWS], generation,
                                    rest[MORE_ROWS:], current)
        elif current is not None and current in self._cells:
            table.move_cursor(row=self._shown.index(current), animate=False)

    def _draw_bar(self) -> None:
        counts = model.counts(self.tasks.values())
        bar = Text()
        for name in model.FILTERS:
            label = f" {name.capitalize()} {counts.get(name, 0)} "
            bar.append(label, style="reverse bold" if name == self.filter else "")
        bar.append(f"  sort: {self.sort_key} {'desc' if self.reverse else 'asc'}")
        if self.needle:
            bar.append(f"  search: {model.visible(self.needle)}")
        if self.at is not None:
            bar.append(f"  AS OF {model.visible(self.at)}", style="bold")
            bar.append(" (t or Esc: live)")
        self.query_one("#bar", Static).update(bar)

    # -- navigation ---------------------------------------------------------------------

    def action_move(self, step: int) -> None:
        table = self.table
        table.move_cursor(row=max(0, table.cursor_row + step), animate=False)

    def action_edge(self, bottom: int) -> None:
        table = self.table
        table.move_cursor(row=(table.row_count - 1) if bottom else 0, animate=False)

    def action_page(self, direction: int) -> None:
        table = self.table
        step = max(1, table.size.height - 2) // 2 or 1
        target = min(max(0, table.cursor_row + direction * step), max(0, table.row_count - 1))
        table.move_cursor(row=target, animate=False)

    def action_filter(self, step: int) -> None:
        self.filter = model.next_filter(self.filter, step)
        self.redraw(full=True)

    def action_sort(self, cycle: int) -> None:
        if cycle:
            keys = self.keys
            self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        else:
            self.reverse = not self.reverse
        self.redraw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key == self.sort_key:
            self.reverse = not self.reverse
        else:
            self.sort_key = key
        self.redraw()

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.add_class("open")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.needle = event.value
            self.redraw(full=True)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self._close_search(keep=True)

    def _close_search(self, keep: bool) -> None:
        box = self.query_one("#search", Input)
        if not keep:
            box.value = ""
            self.needle = ""
            self.redraw(full=True)
        box.remove_class("open")
        self.table.focus()

    def action_escape(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("open"):
            self._close_search(keep=False)
        elif self.needle:
            box.value = ""
            self.needle = ""
            self.redraw(full=True)
        elif self.at is not None:
            self.app.action_live()  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the search box has focus, letters are typed into it, not taken as commands.
        box = self.query_one("#search", Input)
        return not (box.has_focus and action not in ("escape", "filter", "app.quit"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.app.action_details()  # type: ignore[attr-defined]

    # -- actions are the app's (they outlive this screen's focus) -------------------------

    def _app(self, name: str, *args: Any) -> None:
        getattr(self.app, f"action_{name}")(*args)

    def action_stop(self) -> None:
        self._app("stop", False)

    def action_kill(self) -> None:
        self._app("stop", True)

    def action_new(self) -> None:
        self._app("new")

    def action_rerun(self) -> None:
        self._app("rerun")

    def action_restart(self) -> None:
        self._app("restart")

    def action_send(self) -> None:
        self._app("send")

    def action_log(self) -> None:
        self._app("log")

    def action_cleanup(self) -> None:
        self._app("cleanup")

    def action_history(self) -> None:
        self._app("history")

    def action_time_travel(self) -> None:
        self._app("time_travel")

    def action_help(self) -> None:
        self._app("help")
