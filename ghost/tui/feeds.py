"""Background readers that push into the UI: the task list and one task's output.

Both are woken by inotify through ghost.actions.follow (`list --watch` and `log -f` use the same
code), never by a polling loop. Each runs in a daemon thread: a follower checks its stop flag
only on wake-ups (at least once a second), and quitting the UI must not wait for that.
Results reach the UI through `deliver`, which the app makes `call_from_thread`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Self

from ghost.errors import GhostError
from projections.tasks import Task

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ghost.tui.streams import Parts, Tagger

UNTAGGED = 0  # (ghost.tui.streams.UNTAGGED, without importing the index readers here)

Deliver = Callable[..., Any]


class Feed:
    """One daemon thread running `body` until `stop()`; its errors are delivered, not raised."""

    def __init__(self, name: str, deliver: Deliver, on_error: Callable[[str], None]) -> None:
        self._stop = threading.Event()
        self._deliver = deliver
        self._on_error = on_error
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def send(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Run `fn(*args)` on the UI thread; False once stopped or the app has gone."""
        if self._stop.is_set():
            return False
        try:
            self._deliver(fn, *args)
        except RuntimeError:  # the app is shutting down (call_from_thread refuses)
            self._stop.set()
            return False
        return True

    def _run(self) -> None:
        try:
            self.body()
        except GhostError as exc:
            self.send(self._on_error, exc.message)
        except Exception as exc:  # noqa: BLE001 - a reader thread must report, never die silently
            self.send(self._on_error, f"{type(exc).__name__}: {exc}")

    def body(self) -> None:
        raise NotImplementedError


class TaskFeed(Feed):
    """Every version of the task list, as `list --watch` sees it."""

    def __init__(self, deliver: Deliver, on_tasks: Callable[[list[Task]], None],
                 on_error: Callable[[str], None]) -> None:
        super().__init__("ghost-ui-tasks", deliver, on_error)
        self._on_tasks = on_tasks

    def body(self) -> None:
        from ghost.actions.follow import watch_tasks

        for tasks in watch_tasks("all", stop=self._stop.is_set):
            if not self.send(self._on_tasks, tasks):
                return


class LogFeed(Feed):
    """One task's output after byte `start`, as (stream, bytes) parts, until it ends or is
    stopped. With a `tagger` (the task has stream tags) chunks come as written and are tagged
    here, in this thread (tagging reads the index file); without, in whole lines, untagged.
    The feed closes the tagger when it is done with it."""

    def __init__(self, task_id: str, start: int, deliver: Deliver,
                 on_data: Callable[[Parts], None], on_end: Callable[[Task], None],
                 on_error: Callable[[str], None], tagger: Tagger | None = None) -> None:
        super().__init__(f"ghost-ui-log-{task_id[:8]}", deliver, on_error)
        self.task_id = task_id
        self._start = start
        self._on_data = on_data
        self._on_end = on_end
        self._tagger = tagger

    def body(self) -> None:
        from ghost.actions.follow import Ended, follow_output

        tagger = self._tagger
        try:
            for item in follow_output([self.task_id], lines=tagger is None,
                                      stop=self._stop.is_set, start=self._start):
                if isinstance(item, Ended):
                    self.send(self._on_end, item.task)
                    return
                parts = (tagger.split(item.data, item.offset) if tagger is not None
                         else [(UNTAGGED, item.data)])
                if parts and not self.send(self._on_data, parts):
                    return
        finally:
            if tagger is not None:
                tagger.close()
