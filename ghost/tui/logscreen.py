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
from ghost.tui.streams import STDERR, Parts, Tagger, open_tail
from projections.tasks import Task

MAX_LINES = 5000
MAX_LINE_CHARS = 4096
TAIL_LINES = 500  # what the view opens on: more than any screen, so scrolling back works at once
TAIL_BYTES = 256 << 10
PENDING_LIMIT = 1 << 16  # a partial line longer than this is shown in pieces
ERR_MARK = "▌ "  # before each stderr line, when the task's output has stream tags
PLAIN_MARK = " " * len(ERR_MARK)  # before the others then (lines stay aligned)


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
        self._pending_err = False  # the partial line holds bytes written to stderr
        self.tagged = False  # the output has stream tags: stderr lines are marked
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
        self.app.act(lambda: open_tail(task_id, TAIL_LINES, TAIL_BYTES),  # type: ignore[attr-defined]
                     self._opened, title="Log")

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def _opened(self, result: tuple[Task, int, int, Parts, Tagger | None]) -> None:
        task, start, end, parts, tagger = result
        if not self.is_attached:  # closed before the log was read
            if tagger is not None:
                tagger.close()
            return
        self.tagged = tagger is not None
        if start > 0:
            self.log_widget.write(Text(f"... (earlier output not shown: {start} bytes; "
                                       "`ghost log` has it all)", style="dim"))
        self.add_parts(parts)
        self.task_record = task
        self._title()
        if task.running:
            self.feed = LogFeed(task.id, end, self.app.call_from_thread, self.add_parts,
                                self._task_ended, self._feed_error, tagger).start()
        else:
            if tagger is not None:
                tagger.close()
            self._task_ended(task)

    def _feed_error(self, message: str) -> None:
        self.app.notify(message, title="Log", severity="error")

    def _task_ended(self, task: Task) -> None:
        self.ended = task
        self._flush()
        self._title()

    # -- output -------------------------------------------------------------------------

    def add_parts(self, parts: Parts) -> None:
        for stream, data in parts:
            self.add_output(data, stream == STDERR)

    def add_output(self, data: bytes, stderr: bool = False) -> None:
        """Bytes of output: whole lines are shown now, a partial last line once completed. A
        line holding any byte written to stderr is shown as stderr."""
        pieces = data.split(b"\n")
        if len(pieces) > 1:
            first = (bytes(self._pending) + pieces[0], self._pending_err or stderr)
            self._write([first, *((p, stderr) for p in pieces[1:-1])])
            self._pending[:] = pieces[-1]
            self._pending_err = stderr and bool(pieces[-1])
        else:
            self._pending += data
            self._pending_err = self._pending_err or (stderr and bool(data))
        if len(self._pending) >= PENDING_LIMIT:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._write([(bytes(self._pending), self._pending_err)])
            self._pending.clear()
            self._pending_err = False

    def _write(self, lines: list[tuple[bytes, bool]]) -> None:
        lines = lines[-MAX_LINES:]
        colour = bool(getattr(self.app, "colour", True))
        texts = []
        for raw, stderr in lines:
            text = render(raw[:MAX_LINE_CHARS], colour)
            if len(raw) > MAX_LINE_CHARS or len(text) > MAX_LINE_CHARS:
                text.truncate(MAX_LINE_CHARS)
                text.append(f" ... (line cut: {len(raw)} bytes)", style="dim")
            if self.tagged:  # a gutter: stderr lines marked (and red), stdout ones aligned
                if stderr and colour:
                    text.stylize_before("red")
                mark = (ERR_MARK, "bold red" if colour else "bold") if stderr else PLAIN_MARK
                text = Text.assemble(mark, text)
            texts.append(text)
        self.lines_seen += len(texts)
        # One write for the whole batch: the log trims to MAX_LINES once, not per line.
        self.log_widget.write(Text("\n").join(texts), shrink=False)

    def _title(self) -> None:
        task = self.ended or self.task_record
        state = model.status_text(task)
        follow = "following" if self.following else "paused (^F: follow)"
        title = Text(f"{task.id[:8]}  {state}  {follow}  ")
        if self.tagged:
            title.append(ERR_MARK.rstrip(), style="bold red")
            title.append(" stderr  ")
        title.append(model.command_line(task.command))
        self.query_one("#title", Static).update(title)

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
