"""Small modal screens: the run dialog, the cleanup confirmation, the time prompt, the key map."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from ghost.tui import model
from projections.tasks import Task

DIALOG_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{ width: 80%; max-width: 100; height: auto; border: thick $accent;
                     background: $surface; padding: 1 2; }}
{name} Input {{ margin-bottom: 1; }}
{name} Horizontal {{ height: auto; }}
{name} Button {{ margin-right: 2; }}
{name} #supervision Input {{ width: 1fr; }}
"""


class RunDialog(ModalScreen[dict[str, str] | None]):
    """`n`: start a task. Returns the fields (command, cwd, env, name, group, restart)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="RunDialog")

    def __init__(self, cwd: str) -> None:
        super().__init__()
        self.cwd = cwd

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Run a command in the background (Enter: run, Esc: cancel)")
            yield Input(placeholder="command, e.g. npm run dev", id="command")
            yield Input(value=self.cwd, placeholder="directory", id="cwd")
            yield Input(placeholder="environment: KEY=VALUE KEY2=VALUE2 (optional)", id="env")
            with Horizontal(id="supervision"):
                yield Input(placeholder="name (optional)", id="name")
                yield Input(placeholder="group (optional)", id="group")
                yield Input(placeholder="restart: no, on-failure, always", id="restart")
            with Horizontal():
                yield Button("Run", variant="primary", id="run")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#command", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        command = self.query_one("#command", Input).value.strip()
        if not command:
            self.app.notify("Type a command to run.", severity="warning")
            self.query_one("#command", Input).focus()
            return
        self.dismiss({box.id or "": box.value.strip() for box in self.query(Input)})

    def action_cancel(self) -> None:
        self.dismiss(None)


class CleanupDialog(ModalScreen[str | None]):
    """`c`: clean up the selected finished task (its id) or every finished one ("all")."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "choose('one')", "This task"),
        Binding("a", "choose('all')", "All finished"),
        Binding("n,escape", "choose('')", "Cancel"),
    ]
    DEFAULT_CSS = DIALOG_CSS.format(name="CleanupDialog")

    def __init__(self, task: Task | None, finished: int) -> None:
        super().__init__()
        self.task_record = task
        self.finished = finished

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.task_record is not None:
                what = (f"Clean up task {self.task_record.id[:8]} "
                        f"({model.command_line(self.task_record.command)})?")
                yield Static(what, markup=False)
            yield Static(f"{self.finished} finished task(s) in all. Cleaned tasks leave the list "
                         "and their logs are deleted; `ghost history` keeps their events.",
                         markup=False)
            with Horizontal():
                if self.task_record is not None:
                    yield Button("y: this task", variant="warning", id="one")
                yield Button("a: all finished", variant="error", id="all")
                yield Button("n: cancel", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_choose(event.button.id or "")

    def action_choose(self, choice: str) -> None:
        if choice == "one":
            if self.task_record is None:
                return
            self.dismiss(self.task_record.id)
        elif choice == "all":
            self.dismiss("all")
        else:
            self.dismiss(None)


class PromptDialog(ModalScreen[str | None]):
    """One line of input: `t` asks for a time (`list --at`), `i` for a line to send."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = DIALOG_CSS.format(name="PromptDialog")

    def __init__(self, label: str, placeholder: str = "", keep_spaces: bool = False) -> None:
        super().__init__()
        self.label = label
        self.placeholder = placeholder
        self.keep_spaces = keep_spaces

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.label, markup=False)
            yield Input(placeholder=self.placeholder, id="answer")

    def on_mount(self) -> None:
        self.query_one("#answer", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        value = event.value if self.keep_spaces else event.value.strip()
        self.dismiss(value if value or self.keep_spaces else None)

    def action_cancel(self) -> None:
        self.dismiss(None)


TIME_PROMPT = ("Show the task list as it was at (e.g. 10m, 2h, yesterday, 2026-12-03T08:00):")


KEYS = (
    ("Task list", (
        ("j / k, Down / Up", "move"), ("g / G", "top / bottom"), ("Ctrl+D / Ctrl+U", "page"),
        ("Tab / Shift+Tab", "filter: All, Running, Exited, Killed, Unknown"),
        ("/", "search command, name and id"), ("o / O", "sort column / order"),
        ("Enter", "details: status, environment names, history"), ("l", "log view"),
        ("s", "stop (SIGTERM, then SIGKILL after 10 s)"), ("Ctrl+K / K", "kill (SIGKILL)"),
        ("r", "rerun the selected command (a new task)"),
        ("R", "restart the selected task (its next attempt)"),
        ("i", "send a line to its input (tasks started with --stdin or --pty)"),
        ("a", "attach to its terminal (--pty tasks; Ctrl-] detaches)"),
        ("n", "run a new command (name, group, restart policy optional)"),
        ("c", "clean up finished tasks (asks first)"), ("h", "history (audit trail)"),
        ("t", "time travel: the list at a past time (t / Esc: back)"),
        ("Esc", "clear search / leave time travel"), ("?", "this help"),
        ("q / Ctrl+C", "quit"))),
    ("Log view", (
        ("j / k", "scroll down / up"), ("h / l", "scroll left / right"), ("g / G", "top / bottom"),
        ("Ctrl+D / Ctrl+U, PgDn / PgUp", "page"), ("Ctrl+F / f", "toggle follow"),
        ("Esc / q", "back"))),
    ("History", (("a", "selected task / all tasks"), ("Esc / q", "back"))),
)


def help_text() -> str:
    """The key map as plain text (what the help screen shows)."""
    return "\n".join(f"{key}  {what}" for _, keys in KEYS for key, what in keys)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 90; height: 90%;
                                  border: thick $accent; background: $surface; }
    """

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        for section, keys in KEYS:
            table.add_row(f"[u]{section}[/u]", "")
            for key, what in keys:
                table.add_row(key, what)
            table.add_row("", "")
        with VerticalScroll():
            yield Static(table)
