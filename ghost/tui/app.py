"""`ghost ui`: the Textual app. Every action goes through ghost.actions with `via="tui"`.

Actions that may block (stop waits for the end, run waits for the monitor's report) run in
worker threads; their results and errors come back as notifications. Nothing an action raises
reaches the terminal as a traceback: a GhostError is its message, anything else its type and
message, both as an error notification.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from ghost.errors import GhostError
from ghost.tui import model
from ghost.tui.feeds import TaskFeed
from ghost.tui.tasks import TasksScreen
from projections.tasks import Task

VIA = "tui"
USAGE_EVERY = 5  # seconds between CPU/memory samples of running tasks (a pass over /proc)


class GhostApp(App[None]):
    TITLE = "ghost"
    ENABLE_COMMAND_PALETTE = False  # every action has its own key (see `?`)
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]
    # Notifications say how a stop ended; long enough to read, short enough not to pile up.
    NOTIFICATION_TIMEOUT = 6

    def __init__(self, clock: Callable[[], int] = time.time_ns, live: bool = True,
                 resources: bool | None = None) -> None:
        """`clock`, `live` (False: no feed thread) and `resources` (CPU/memory columns;
        default: when ghost.actions.resources exists) are seams for tests and benchmarks."""
        super().__init__()
        self.now_ns = clock
        self.live = live
        self.feed: TaskFeed | None = None
        self.failure: str | None = None  # why the app gave up (printed after the screen closes)
        self.sample_usage = model.has_resources() if resources is None else resources
        self.main = TasksScreen(self.sample_usage)
        self.latest: list[Task] = []  # the live list, kept while time travel shows another
        self.colour = not self.no_color
        self._ticks = 0

    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications show task data (commands, messages) as text, never as markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    # -- life cycle ---------------------------------------------------------------------

    def on_mount(self) -> None:
        self.push_screen(self.main)
        if self.live:
            self.feed = TaskFeed(self.call_from_thread, self._on_tasks, self._on_feed_error)
            self.feed.start()
        self.set_interval(1.0, self._tick)

    def on_unmount(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def _on_tasks(self, tasks: list[Task]) -> None:
        self.latest = tasks
        if self.main.at is None:
            self.main.show_tasks(tasks)

    def _on_feed_error(self, message: str) -> None:
        if not self.main.loaded:  # nothing could ever be shown: leave with the reason
            self.failure = message
            self.exit(return_code=1)
        else:
            self.notify(message, title="Task list", severity="error")

    def _tick(self) -> None:
        """Running tasks' durations move on (nothing is read from the store here); every
        USAGE_EVERY ticks their CPU and memory are sampled, when ghost.actions.resources
        exists."""
        if not self.main.is_current or not any(t.running for t in self.main.tasks.values()):
            return
        self._ticks += 1
        if self.sample_usage and self._ticks % USAGE_EVERY == 0 and self.main.at is None:
            self._sample()
        self.main.tick()

    def _sample(self) -> None:
        usage = model.resources().usage
        running = [t for t in self.main.tasks.values() if t.running]

        def work() -> None:
            try:
                found = usage(running, via=VIA)
            except Exception as exc:  # noqa: BLE001 - reported once, then sampling stops
                self.sample_usage = False
                self.call_from_thread(self.notify, f"CPU/memory sampling stopped: {exc}",
                                      severity="warning")
                return
            self.call_from_thread(self._usage, found)

        self.run_worker(work, thread=True, group="usage", exclusive=True, exit_on_error=False)

    def _usage(self, found: dict[str, Any]) -> None:
        self.main.usage = found
        self.main.tick()

    # -- helpers ------------------------------------------------------------------------

    def selected(self, quiet: bool = False) -> Task | None:
        task = self.main.selected()
        if task is None and not quiet:
            self.notify("No task selected.", severity="warning")
        return task

    def act(self, work: Callable[[], Any], done: Callable[[Any], None],
            title: str = "ghost") -> None:
        """Run `work()` in a thread; `done(result)` on success, an error notification if not."""

        def run() -> None:
            try:
                result = work()
            except GhostError as exc:
                self.call_from_thread(self.notify, exc.message, title=title, severity="error")
                return
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
                self.call_from_thread(self.notify, f"{type(exc).__name__}: {exc}", title=title,
                                      severity="error")
                return
            self.call_from_thread(done, result)

        self.run_worker(run, thread=True, group="actions", exit_on_error=False)

    # -- actions ------------------------------------------------------------------------

    def action_stop(self, force: bool) -> None:
        task = self.selected()
        if task is None:
            return
        if self._past():
            return
        from ghost.actions.stop import stop
        from ghost.state.tasks import describe_end

        word = "Killing" if force else "Stopping"
        self.notify(f"{word} {task.id[:8]} ({model.command_line(task.command)})", timeout=2)
        self.act(lambda: stop(task.id, force=force, via=VIA),
                 lambda ended: self.notify(f"Task {ended.id[:8]} {describe_end(ended)}.",
                                           title="Stopped" if not force else "Killed"),
                 title="Kill" if force else "Stop")

    def action_rerun(self) -> None:
        task = self.selected()
        if task is None:
            return
        from ghost.actions.run import start_one

        def done(started: Any) -> None:
            note = ""
            if task.env_keys:
                note = (" Environment overrides were not re-applied (ghost never stores their "
                        f"values): {', '.join(map(model.visible, task.env_keys))}.")
            self.notify(f"Started {started.id[:8]} (pid {started.pid}).{note}", title="Rerun")

        self.act(lambda: start_one(list(task.command), task.cwd, {}, via=VIA), done,
                 title="Rerun")

    def action_new(self) -> None:
        from ghost.tui.dialogs import RunDialog

        task = self.selected(quiet=True)
        cwd = task.cwd if task is not None else _here()
        self.push_screen(RunDialog(cwd), self._run)

    def _run(self, request: dict[str, str] | None) -> None:
        if request is None:
            return
        from ghost.actions.run import start
        from ghost.actions.supervise import supervision

        def work() -> list[Any]:
            try:
                pairs = shlex.split(request["env"])
            except ValueError as exc:
                raise GhostError(f"cannot parse the environment: {exc}") from None
            sup = supervision(name=request.get("name") or None,
                              group=request.get("group") or None,
                              restart=request.get("restart") or None)
            extra: dict[str, Any] = {"sup": sup} if sup is not None else {}
            if extra and not takes_supervision():
                raise GhostError("this ghost cannot start named or supervised tasks yet")
            return list(start([request["command"]], request["cwd"] or None, pairs, via=VIA,
                              **extra))

        self.act(work, lambda started: self.notify(
            "\n".join(f"Started {s.id[:8]} (pid {s.pid})" for s in started), title="Run"),
            title="Run")

    def action_restart(self) -> None:
        task = self.selected()
        if task is None or self._past():
            return
        from ghost.actions.restart import restart

        self.notify(f"Restarting {task.id[:8]} ...", timeout=2)
        self.act(lambda: restart(task.id, via=VIA), lambda started: self.notify(
            f"Task {started.id[:8]} restarted (pid {started.pid}).", title="Restart"),
            title="Restart")

    def action_send(self) -> None:
        task = self.selected()
        if task is None or self._past():
            return
        from ghost.tui.dialogs import PromptDialog

        self.push_screen(PromptDialog(f"A line for the input of {task.id[:8]} "
                                      f"({model.command_line(task.command)}):",
                                      keep_spaces=True), lambda line: self._send(task, line))

    def _send(self, task: Task, line: str | None) -> None:
        if line is None:
            return
        from ghost.actions.send import send

        self.act(lambda: send(task.id, [line.encode() + b"\n"], via=VIA),
                 lambda _sent: self.notify(f"Sent {len(line) + 1} bytes to {task.id[:8]}.",
                                           timeout=2), title="Send")

    def action_attach(self) -> None:
        task = self.selected()
        if task is None or self._past():
            return
        from ghost.actions.attach import attach

        self.act(lambda: attach(task.id, via=VIA), self._attached, title="Attach")

    def _attached(self, opened: tuple[Any, bytes]) -> None:
        """The session is open: the UI steps aside (App.suspend) while it runs."""
        from textual.app import SuspendNotSupported

        from ghost.state.tasks import describe_end
        from ghost.tui import attach

        session, recent = opened
        short = session.task.id[:8]
        banner = f"ghost: attached to task {short}; Ctrl-] detaches (the task keeps running)"
        try:
            try:
                with self.suspend():
                    ended = attach.run(session, recent, banner)
            finally:
                session.close()
        except SuspendNotSupported:
            self.notify("Attach needs a real terminal (this one cannot be handed over).",
                        title="Attach", severity="error")
            return
        except GhostError as exc:
            self.notify(exc.message, title="Attach", severity="error")
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
            self.notify(f"{type(exc).__name__}: {exc}", title="Attach", severity="error")
            return
        if ended is not None:
            self.notify(f"Task {short} {describe_end(ended)}.", title="Attach")
        else:
            self.notify(f"Detached from task {short} (it keeps running).", title="Attach")

    def _past(self) -> bool:
        if self.main.at is None:
            return False
        self.notify("Time travel shows the past; press t to act on live tasks.",
                    severity="warning")
        return True

    def action_cleanup(self) -> None:
        from ghost.tui.dialogs import CleanupDialog

        task = self.selected(quiet=True)
        one = task if task is not None and not task.running and self.main.at is None else None
        finished = sum(1 for t in self.main.tasks.values() if not t.running)
        if not finished:
            self.notify("No finished task to clean up.", severity="warning")
            return
        self.push_screen(CleanupDialog(one, finished), self._cleanup)

    def _cleanup(self, choice: str | None) -> None:
        if not choice:
            return
        from ghost.actions.cleanup import cleanup

        one = None if choice == "all" else choice
        self.act(lambda: cleanup(everything=True, via=VIA, task=one),
                 lambda result: self.notify(
                     f"Cleaned up {len(result.tasks)} task(s); their logs were deleted.",
                     title="Cleanup"), title="Cleanup")

    def action_log(self) -> None:
        task = self.selected()
        if task is not None:
            from ghost.tui.logscreen import LogScreen

            self.push_screen(LogScreen(task))

    def action_details(self) -> None:
        task = self.selected()
        if task is not None:
            from ghost.tui.details import DetailsScreen

            self.push_screen(DetailsScreen(task.id, self.main.at))

    def action_history(self) -> None:
        from ghost.tui.details import HistoryScreen

        task = self.selected(quiet=True)
        self.push_screen(HistoryScreen(task.id if task is not None else None))

    def action_time_travel(self) -> None:
        if self.main.at is not None:
            self.action_live()
            return
        from ghost.tui.dialogs import TIME_PROMPT, PromptDialog

        self.push_screen(PromptDialog(TIME_PROMPT, "time"), self._travel)

    def _travel(self, when: str | None) -> None:
        if not when:
            return
        from ghost.actions.query import listing

        self.act(lambda: listing("all", at=when),
                 lambda tasks: self.main.show_tasks(tasks, at=when), title="Time travel")

    def action_live(self) -> None:
        if self.live:
            self.main.show_tasks(self.latest)
        else:
            from ghost.actions.query import listing

            self.act(lambda: listing("all"), self.main.show_tasks, title="Task list")
        self.notify("Back to the live task list.", timeout=2)

    def action_help(self) -> None:
        from ghost.tui.dialogs import HelpScreen

        self.push_screen(HelpScreen())


def takes_supervision() -> bool:
    """Whether run.start takes names, groups and policies (supervision, other work)."""
    import inspect

    from ghost.actions.run import start

    return "sup" in inspect.signature(start).parameters


def _here() -> str:
    try:
        return os.getcwd()
    except FileNotFoundError:
        return os.path.expanduser("~")
