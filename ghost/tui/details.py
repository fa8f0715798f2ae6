"""`Enter` details of one task and `h` the history screen (the audit trail, as `ghost history`).

Both read through ghost.actions (query.status, audit.history / audit.recent) in a worker thread,
and show every value through `model.visible`. Environment overrides are listed by name only:
ghost never stores their values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from events.types import Corrupt, Event
from ghost.tui import model

HISTORY_LIMIT = 2000  # events shown for "all tasks" (the most recent ones)


def describe(item: Event | Corrupt) -> tuple[str, str, str]:
    """(type, who, what) of one event, for people."""
    if isinstance(item, Corrupt):
        return "corrupt", "", model.visible(str(item.reason))
    data: Mapping[str, Any] = item.data
    who = data.get("actor") or {}
    by = " ".join(str(who.get(k)) for k in ("via", "user") if who.get(k))
    kind = item.type
    if kind == "spawned":
        what = f"pid {data.get('pid')}: {model.command_line(data.get('command') or ())}"
        if data.get("env_keys"):
            what += f"  env: {', '.join(map(str, data['env_keys']))}"
    elif kind == "spawn_failed":
        what = str(data.get("error", ""))
    elif kind == "stop_requested":
        what = f"{data.get('signal')} (timeout {data.get('timeout')}s)"
        what += ", escalated" if data.get("escalated") else ""
    elif kind == "exited":
        what = f"code {data.get('code')}"
    elif kind == "killed":
        what = f"by {data.get('signal')}"
    elif kind == "lost":
        what = str(data.get("reason", ""))
    elif kind == "cleaned":
        what = "log removed" if data.get("log_removed") else "log kept"
    else:
        what = " ".join(f"{k}={v}" for k, v in data.items() if k not in ("actor", "env"))
    return kind, model.visible(by), model.visible(what)


class DetailsScreen(Screen[None]):
    """Every `status` field, environment names, ports when known, and the task's timeline."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("l", "log", "Log"),
        Binding("j,down", "scroll(1)", "Down", show=False),
        Binding("k,up", "scroll(-1)", "Up", show=False),
    ]
    DEFAULT_CSS = """
    DetailsScreen #title { height: 1; padding: 0 1; background: $boost; }
    DetailsScreen VerticalScroll { padding: 0 1; }
    """

    def __init__(self, task_id: str, at: str | None = None) -> None:
        super().__init__()
        self.task_id = task_id
        self.at = at

    def compose(self) -> ComposeResult:
        yield Static(Text(f"Task {self.task_id[:8]}" + (f" as of {model.visible(self.at)}"
                                                          if self.at else "")), id="title")
        with VerticalScroll(id="scroll"):
            yield Static("Loading ...", id="body")
        yield Footer()

    def on_mount(self) -> None:
        task_id, at = self.task_id, self.at

        def load() -> Text:
            from ghost.actions.audit import history
            from ghost.actions.query import status

            observed = status(task_id, at)
            events = [e.item for e in history(task_id).entries]
            return details_text(observed, events, _resources(observed.task))

        self.app.act(load, self.query_one("#body", Static).update,  # type: ignore[attr-defined]
                     title="Details")

    def action_scroll(self, step: int) -> None:
        box = self.query_one("#scroll", VerticalScroll)
        box.scroll_to(y=box.scroll_y + step, animate=False)

    def action_log(self) -> None:
        from ghost.tui.logscreen import LogScreen

        task = self.app.main.tasks.get(self.task_id)  # type: ignore[attr-defined]
        if task is not None:
            self.app.push_screen(LogScreen(task))


def _resources(task: Any) -> Mapping[str, Any] | None:
    """Processes, CPU, memory and listening ports of a running task, when
    ghost.actions.resources exists (other work adds it)."""
    if not task.running or not model.has_resources():
        return None
    found = model.resources().usage([task], via="tui").get(task.id)
    if found is None:
        return None
    return {"Processes": found.processes, "CPU": f"{found.cpu_percent:.1f}% (since start)",
            "Memory": model.human_bytes(found.rss_bytes),
            "Ports": ", ".join(f"{p.proto} {p.address}:{p.port}" for p in found.ports)
            or "(none listening)"}


def details_text(observed: Any, events: Iterable[Event | Corrupt],
                 resources: Mapping[str, Any] | None) -> Text:
    task = observed.task
    rows: list[tuple[str, str]] = [("Task", task.id)]
    for name in model.OPTIONAL:
        if model.field(task, name):
            rows.append((name.capitalize(), model.visible(str(model.field(task, name)))))
    status = model.status_text(task)
    if task.running and observed.unmonitored:
        status += " (unmonitored)"
    if observed.group_left:
        status += f", {observed.group_left} process(es) still running in its group"
    rows += [("PID", str(task.pid)), ("Status", status),
             ("Command", model.command_line(task.command)), ("Directory", model.visible(task.cwd)),
             ("Started", model.local_time(task.started_ns))]
    if not task.running:
        rows.append(("Finished", model.local_time(task.finished_ns)))
        if task.status == "unknown":
            rows.append(("Exit code", f"unknown ({model.visible(task.lost_reason or '')})"))
        if task.finished_ns:
            rows.append(("Duration", model.duration(task.finished_ns - task.started_ns)))
    if task.stop:
        who = task.stop.get("actor", {})
        rows.append(("Stop requested", f"{task.stop.get('signal')} by {who.get('user', '?')} "
                     f"via {who.get('via', '?')} at {model.local_time(task.stop.get('time_ns'))}"))
    started_by = task.actor or {}
    if started_by:
        rows.append(("Started by", f"{started_by.get('user', '?')} via "
                                   f"{started_by.get('via', '?')}"))
    if model.field(task, "attempt") and task.attempt > 1:
        rows.append(("Attempt", str(task.attempt)))
    if model.field(task, "policy"):
        rows.append(("Restart policy", model.visible(", ".join(
            f"{k}={v}" for k, v in dict(task.policy).items()))))
    rows.append(("Environment", ", ".join(map(model.visible, task.env_keys)) or
                 "(no overrides; values are never stored)"))
    for key, value in (resources or {}).items():
        rows.append((str(key), model.visible(str(value))))
    rows.append(("Log file", model.visible(task.log_path)))
    out = Text()
    width = max(len(k) for k, _ in rows) + 2
    for key, value in rows:
        out.append(f"{key}:".ljust(width), style="bold")
        out.append(f"{value}\n")
    out.append("\nHistory\n", style="bold underline")
    for item in events:
        kind, who, what = describe(item)
        stamp = model.local_time(item.time_ns) if isinstance(item, Event) else ""
        out.append(f"{stamp}  {kind:<15} {who:<14} {what}\n")
    return out


class HistoryScreen(Screen[None]):
    """The audit trail of one task (`a` switches to every task's most recent events)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("a", "scope", "Task / all"),
        Binding("j", "move(1)", "Down", show=False),
        Binding("k", "move(-1)", "Up", show=False),
        Binding("g", "edge(0)", "Top", show=False),
        Binding("G", "edge(1)", "Bottom", show=False),
    ]
    DEFAULT_CSS = "HistoryScreen #title { height: 1; padding: 0 1; background: $boost; }"

    def __init__(self, task_id: str | None) -> None:
        super().__init__()
        self.task_id = task_id
        self.all = task_id is None
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        table: DataTable[Text] = DataTable(id="events", cursor_type="row", zebra_stripes=True)
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self._columns(self.query_one("#events", DataTable))
        self._load()

    @staticmethod
    def _columns(table: DataTable[Text]) -> None:
        for label in ("Seq", "Time", "Task", "Event", "By", "Details"):
            table.add_column(label, key=label.lower())

    def _load(self) -> None:
        ident = None if self.all else self.task_id
        scope = "all tasks (most recent)" if ident is None else f"task {ident[:8]}"
        self.query_one("#title", Static).update(Text(f"History of {scope}"))

        self._generation += 1
        generation = self._generation

        def load() -> list[Event | Corrupt]:
            from ghost.actions.audit import recent

            return recent(ident, None, HISTORY_LIMIT)[0]

        self.app.act(load, lambda events: self._show(events, generation),  # type: ignore[attr-defined]
                     title="History")

    def _show(self, events: list[Event | Corrupt], generation: int) -> None:
        if generation != self._generation:
            return  # `a` was pressed again before this read came back
        table = self.query_one("#events", DataTable)
        table.clear(columns=True)  # columns are sized again for these events
        self._columns(table)
        for item in events:
            kind, who, what = describe(item)
            if isinstance(item, Event):
                cells = (str(item.seq), model.local_time(item.time_ns), item.task[:8], kind, who,
                         what)
            else:
                cells = (str(item.seq), "", "", kind, "", what)
            table.add_row(*(Text(c, no_wrap=True) for c in cells))
        table.move_cursor(row=max(0, table.row_count - 1), animate=False)

    def action_scope(self) -> None:
        if self.task_id is None:
            self.app.notify("No task was selected: showing all tasks.", timeout=2)
            return
        self.all = not self.all
        self._load()

    def action_move(self, step: int) -> None:
        table = self.query_one("#events", DataTable)
        table.move_cursor(row=max(0, table.cursor_row + step), animate=False)

    def action_edge(self, bottom: int) -> None:
        table = self.query_one("#events", DataTable)
        table.move_cursor(row=table.row_count - 1 if bottom else 0, animate=False)
