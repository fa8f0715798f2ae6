"""The log view: one task's output, opened on its last screenful, then followed live.

Opening costs one bounded read (`query.log_tail`: at most TAIL_BYTES, whatever the file's size);
following resumes at the exact byte that read ended on (`follow_output(start=...)`), so nothing
is lost or shown twice. At most MAX_LINES lines are kept, each cut at MAX_LINE_CHARS, so memory
stays bounded however much the task writes. Lines go through ghost.tui.sanitize first.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, RichLog, Static

from ghost.tui import model
from ghost.tui.feeds import LogFeed
from ghost.tui.sanitize import render
from projections.tasks import Task

MAX_LINES = 5000
MAX_LINE_CHARS = 4096
TAIL_LINES = 500  # what the view opens on: more than any screen, so scrolling back works at once
TAIL_BYTES = 256 << 10
PENDING_LIMIT = 1 << 16  # a partial line longer than this is shown in pieces


class LogScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("ctrl+f,f", "follow", "Follow", key_display="^F"),
        Binding("j,down", "scroll(0, 1)", "Down", show=False),
        Binding("k,up", "scroll(0, -1)", "Up", show=False),
        Binding("l,right", "scroll(8, 0)", "Right", show=False),
        Binding("h,left", "scroll(-8, 0)", "Left", show=False),
        Binding("g,home", "edge(0)", "Top"),
        Binding("G,end", "edge(1)", "Bottom"),
        Binding("ctrl+d,pagedown", "page(1)", "Page down", show=False),
        Binding("ctrl+u,pageup", "page(-1)", "Page up", show=False),
        Binding("question_mark", "app.help", "Help", show=False),
    ]

    DEFAULT_CSS = """
    LogScreen #title { height: 1; padding: 0 1; background: $boost; }
    LogScreen RichLog { height: 1fr; }
    """

    def __init__(self, task: Task) -> None:
        super().__init__()
        self.task_record = task
        self.feed: LogFeed | None = None
        self._pending = bytearray()
        self.ended: Task | None = None if task.running else task
        self.lines_seen = 0

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield RichLog(max_lines=MAX_LINES, wrap=False, highlight=False, markup=False,
                      auto_scroll=True, id="log")
        yield Footer()

    @property
    def log_widget(self) -> RichLog:
        return self.query_one("#log", RichLog)

    @property
    def following(self) -> bool:
        return self.log_widget.auto_scroll

    def on_mount(self) -> None:
        self._title()
        self.log_widget.focus()
        task_id = self.task_record.id
        from ghost.actions.query import log_tail

        self.app.act(lambda: log_tail(task_id, TAIL_LINES, TAIL_BYTES),  # type: ignore[attr-defined]
                     self._opened, title="Log")

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def _opened(self, result: tuple[Task, int, int, bytes]) -> None:
        task, start, end, data = result
        if start > 0:
            self.log_widget.write(Text(f"... (earlier output not shown: {start} bytes; "
                                       "`ghost log` has it all)", style="dim"))
        self.add_output(data)
        self.task_record = task
        if task.running:
            self.feed = LogFeed(task.id, end, self.app.call_from_thread, self.add_output,
                                self._task_ended, self._feed_error).start()
        else:
            self._task_ended(task)

    def _feed_error(self, message: str) -> None:
        self.app.notify(message, title="Log", severity="error")

    def _task_ended(self, task: Task) -> None:
        self.ended = task
        self._flush()
        self._title()

    # -- output -------------------------------------------------------------------------

    def add_output(self, data: bytes) -> None:
        """Bytes of output: whole lines are shown now, a partial last line once completed."""
        self._pending += data
        cut = self._pending.rfind(b"\n") + 1
        if cut:
            self._write(bytes(self._pending[:cut]).split(b"\n")[:-1])
            del self._pending[:cut]
        if len(self._pending) >= PENDING_LIMIT:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._write([bytes(self._pending)])
            self._pending.clear()

    def _write(self, lines: list[bytes]) -> None:
        lines = lines[-MAX_LINES:]
        colour = bool(getattr(self.app, "colour", True))
        texts = []
        for raw in lines:
            text = render(raw[:MAX_LINE_CHARS], colour)
            if len(raw) > MAX_LINE_CHARS or len(text) > MAX_LINE_CHARS:
                text.truncate(MAX_LINE_CHARS)
                text.append(f" ... (line cut: {len(raw)} bytes)", style="dim")
            texts.append(text)
        self.lines_seen += len(texts)
        # One write for the whole batch: the log trims to MAX_LINES once, not per line.
        self.log_widget.write(Text("\n").join(texts), shrink=False)

    def _title(self) -> None:
        task = self.ended or self.task_record
        state = model.status_text(task)
        follow = "following" if self.following else "paused (^F: follow)"
        self.query_one("#title", Static).update(Text(
            f"{task.id[:8]}  {state}  {follow}  {model.command_line(task.command)}"))

    # -- keys ---------------------------------------------------------------------------

    def action_follow(self) -> None:
        log = self.log_widget
        log.auto_scroll = not log.auto_scroll
        if log.auto_scroll:
            log.scroll_end(animate=False)
        self._title()
        self.app.notify("Following the output." if log.auto_scroll else "Follow paused.",
                        timeout=2)

    def action_scroll(self, dx: int, dy: int) -> None:
        log = self.log_widget
        log.scroll_to(x=log.scroll_x + dx, y=log.scroll_y + dy, animate=False)

    def action_edge(self, bottom: int) -> None:
        log = self.log_widget
        if bottom:
            log.scroll_end(animate=False)
        else:
            log.scroll_home(animate=False)

    def action_page(self, direction: int) -> None:
        log = self.log_widget
        step = max(1, log.size.height // 2)
        log.scroll_to(y=log.scroll_y + direction * step, animate=False)
