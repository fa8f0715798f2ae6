"""The main screen: the live task table, its filters, search and sort, and the keys that act.

The table is redrawn from the task list the TaskFeed delivers (woken by commits, like `list
--watch`). A row's strings are made once per change of its task (a running task's also when
its clock or usage moves) and kept by task id; the table (ghost.tui.table) builds the lines of
the rows on screen only. The cursor stays on its task while rows come and go.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from ghost.tui import model
from ghost.tui.table import Row, TaskTable, make_row, status_style
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
        Binding("a", "attach", "Attach", show=False),
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
        # task id -> (the task its row was made from, the row): a finished task's row is made
        # once, whatever the number of redraws; a running task's when its cells change.
        self._rows: dict[str, tuple[Task, Row]] = {}
        self.usage: dict[str, Any] = {}  # task id -> resources.Usage, while it runs
        self.loaded = False
        self._mounted = False
        self._received = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(id="bar")
            yield TaskTable(tuple((c.key, c.label) for c in self.columns), id="tasks")
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
        self.tasks = {t.id: t for t in tasks}
        self.at = at
        self._received = True
        if self._mounted:
            self.redraw()
            self.loaded = True

    def selected(self) -> Task | None:
        key = self.table.cursor_key
        return self.tasks.get(key) if key is not None else None

    def _row(self, task: Task, now: model.Ctx) -> Row:
        known = self._rows.get(task.id)
        if known is not None and not task.running and known[0] == task:
            return known[1]
        cells = model.row(task, now, self.columns)
        if known is not None and known[1].cells == cells:
            row = known[1]
        else:
            style = status_style(task)
            row = make_row(cells, tuple(style if key == "status" else "" for key in self.keys))
        self._rows[task.id] = (task, row)
        return row

    def tick(self) -> None:
        """The clock moved (or usage was sampled): only running tasks' cells can change, and
        rows keep their order until the list itself changes (no re-sort, no re-filter)."""
        now = model.Ctx(self.app.now_ns(), self.usage)  # type: ignore[attr-defined]
        table = self.table
        changed = {}
        for task_id in self._shown:
            task = self.tasks[task_id]
            if task.running:
                row = self._row(task, now)
                if row is not table.rows.get(task_id):
                    changed[task_id] = row
        if changed and not table.update_rows(changed):
            table.set_rows(self._shown, {k: self._rows[k][1] for k in self._shown})

    def redraw(self) -> None:
        """Show the tasks the filter, search and sort choose, the cursor on the same task."""
        now = model.Ctx(self.app.now_ns(), self.usage)  # type: ignore[attr-defined]
        chosen = model.select(self.tasks.values(), self.filter, self.needle, self.sort_key,
                              self.reverse, now, self.columns)
        self._shown = [t.id for t in chosen]
        self.table.set_rows(self._shown, {t.id: self._row(t, now) for t in chosen})
        if len(self._rows) > 2 * len(self.tasks) + 64:  # tasks cleaned up: forget their rows
            self._rows = {k: v for k, v in self._rows.items() if k in self.tasks}
        empty = self.query_one("#empty", Static)
        empty.display = not chosen
        self.table.display = bool(chosen)
        if not chosen and self.tasks:
            empty.update("No task matches this filter or search.")
        self._draw_bar()

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
        self.redraw()

    def action_sort(self, cycle: int) -> None:
        if cycle:
            keys = self.keys
            self.sort_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        else:
            self.reverse = not self.reverse
        self.redraw()

    def on_task_table_header_selected(self, event: TaskTable.HeaderSelected) -> None:
        key = event.column
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
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "search":
            self._close_search(keep=True)

    def _close_search(self, keep: bool) -> None:
        box = self.query_one("#search", Input)
        if not keep:
            box.value = ""
            self.needle = ""
            self.redraw()
        box.remove_class("open")
        self.table.focus()

    def action_escape(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("open"):
            self._close_search(keep=False)
        elif self.needle:
            box.value = ""
            self.needle = ""
            self.redraw()
        elif self.at is not None:
            self.app.action_live()  # type: ignore[attr-defined]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # While the search box has focus, letters are typed into it, not taken as commands.
        box = self.query_one("#search", Input)
        return not (box.has_focus and action not in ("escape", "filter", "app.quit"))

    def on_task_table_row_selected(self, event: TaskTable.RowSelected) -> None:
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

    def action_attach(self) -> None:
        self._app("attach")

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
