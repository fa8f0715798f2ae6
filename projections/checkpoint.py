"""Keeping the task view materialized in the store, and reading it back.

The store calls `TaskView.apply` inside every write transaction, after bringing the view up to
date (rebuilding it from the first event when it is missing or was built by code of another
`VERSION`), and records the sequence number applied in the same transaction. Readers take the
stored rows and fold whatever the view has not applied yet in memory, so a view left behind by
an older writer, or a read-only store, still reads exactly.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

from events.store import Rows, Store, count_skipped
from events.timeline import TIME_BLOCK
from events.types import CLEANED, QUEUED, SPAWN_FAILED, SPAWNED, Event
from projections.tasks import Task, apply, fold, rebuild

VERSION = 2  # bump whenever `projections.tasks.apply` or `Task` changes meaning (2: issue 15)


class TaskView:
    name = "tasks"
    version = VERSION

    def apply(self, rows: Rows, event: Event) -> None:
        old = rows.get(event.task)
        before = Task.from_row(old) if old is not None else None
        after = apply(before, event)
        if after is None:
            if old is not None:
                rows.delete(event.task)
        elif after is not before:
            rows.put(event.task, after.to_row())


class NameIndex:
    """Task names and run keys -> the newest task that carried them: `n:NAME`, `k:KEY` ->
    `{"id": task id}`.

    Lets `ghost run --name/--key` decide inside the write transaction that records the start,
    without reading every task. Entries are never removed: a reader checks that the task they
    point at is still in the task view (a cleaned task frees its name and key)."""

    name = "names"
    version = 1

    def apply(self, rows: Rows, event: Event) -> None:
        if event.type not in (SPAWNED, QUEUED):
            return
        name, key = event.get("name"), event.get("key")
        # Rows are maps ({"id": task id}), like every view's rows.
        if isinstance(name, str) and name:
            rows.put(NAME_PREFIX + name, {"id": event.task})
        if isinstance(key, str) and key and event.get("attempt", 1) == 1:
            rows.put(KEY_PREFIX + key, {"id": event.task})


NAME_PREFIX = "n:"
KEY_PREFIX = "k:"
VIEWS = (TaskView(), NameIndex())


def task_from_rows(rows: Rows, task_id: str) -> Task | None:
    row = rows.get(task_id)
    return Task.from_row(row) if row is not None else None


def load_tasks(store: Store | None) -> dict[str, Task]:
    """The current task view: stored rows plus any events the rows have not applied yet."""
    if store is None:
        return {}
    stored = store.view(TaskView.name, VERSION)
    if stored is None:
        return rebuild(store.scan())
    rows, applied = stored
    try:
        tasks = {key: Task.from_row(row) for key, row in rows.items()}
    except (TypeError, AttributeError) as exc:  # a damaged row: one error line, no traceback
        raise store.damaged(exc) from exc
    for event in store.scan(after=applied):
        fold(tasks, event)
    return tasks


def skipped_events(store: Store | None) -> dict[str, Any]:
    """Events the task view cannot use: {"unknown": n, "corrupt": n, "corrupt_seqs": [...]}.

    Read from the view's checkpoint plus the events it has not applied yet, so it costs a scan
    only when there is no valid stored view.
    """
    counts: dict[str, Any] = {"unknown": 0, "corrupt": 0, "corrupt_seqs": []}
    if store is None:
        return counts
    stored = store.view_skipped(TaskView.name, VERSION)
    after = 0
    if stored is not None:
        counts = stored
        after = store.meta("view:" + TaskView.name)["applied"]
    for event in store.scan(after=after):
        if not isinstance(event, Event) or not event.known:
            count_skipped(counts, event)
    return counts


# Events after which `apply` gives None whatever the task's state was (checked by
# tests/test_timetravel.py): what came before them for that task cannot matter any more.
FORGETTING = frozenset({CLEANED, SPAWN_FAILED})


def tasks_at(store: Store | None, at_ns: int) -> dict[str, Task]:
    """The task view as of `at_ns`: every event stamped at or before it, in sequence order.

    The same result as `fold`ing those events one by one, much cheaper on a long log: it starts
    from the newest snapshot of the view whose events are all stamped at or before `at_ns`,
    skips blocks of the log stamped entirely after it (see events.timeline), and holds each
    task's remaining events back, folding them only if nothing has forgotten the task by then.
    """
    if store is None:
        return {}
    snapshot = store.snapshot(TaskView.name, VERSION, at_ns)
    start, rows = snapshot if snapshot is not None else (0, {})
    tasks = {key: Task.from_row(row) for key, row in rows.items()}
    held: dict[str, list[Event]] = {}
    forgotten: set[str] = set()
    collecting = gc.isenabled()
    gc.disable()  # events make no reference cycles; collections while `held` grows cost ~half
    try:
        for event in _events_before(store, start, at_ns):
            if event.type in FORGETTING:
                held.pop(event.task, None)
                forgotten.add(event.task)
            else:
                held.setdefault(event.task, []).append(event)
    finally:
        if collecting:
            gc.enable()
    for task_id in forgotten:
        tasks.pop(task_id, None)
    for task_id, events in held.items():
        state: Task | None = tasks.get(task_id)
        for event in events:
            state = apply(state, event)
        if state is None:
            tasks.pop(task_id, None)
        else:
            tasks[task_id] = state
    return tasks


def _events_before(store: Store, after: int, at_ns: int) -> Iterator[Event]:
    """Known events after seq `after` stamped at or before `at_ns`, skipping whole blocks of
    the log that the time index says are stamped later."""
    skip = store.skippable_blocks(at_ns)
    last = store.last_seq()
    seq = after
    while seq < last:
        block = (seq + 1) // TIME_BLOCK
        end = min(last, (block + 1) * TIME_BLOCK - 1)
        if block not in skip:
            for event in store.read(seq, limit=end - seq):
                if isinstance(event, Event) and event.known and event.time_ns <= at_ns:
                    yield event
        seq = end
