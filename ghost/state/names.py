"""Task names, groups and run keys: validation, lookup, and the checks made inside the write
transaction that records a start (so 20 concurrent `run --name web` give exactly one task).

Kept lean: the monitor imports this on its way to recording `spawned`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from events.store import Rows, Store
from projections.checkpoint import KEY_PREFIX, NAME_PREFIX, NameIndex, task_from_rows
from projections.tasks import Task

MAX_NAME = 64
MAX_KEY = 200  # a key is stored in an index key; LMDB keys are at most 511 bytes
_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


def check_name(value: str, what: str = "--name") -> str:
    """A name or group: letters, digits, `.`, `_`, `-`; at most 64 characters."""
    from ghost.errors import USAGE, GhostError

    if not _NAME.fullmatch(value):
        raise GhostError(f"invalid {what} {value!r}: use 1-{MAX_NAME} letters, digits, '.', "
                         "'_' or '-'", USAGE)
    return value


def check_key(value: str) -> str:
    from ghost.errors import USAGE, GhostError

    if not value or len(value.encode("utf-8", "surrogateescape")) > MAX_KEY or "\0" in value:
        raise GhostError(f"invalid --key {value[:40]!r}: it must be 1-{MAX_KEY} bytes without "
                         "NUL", USAGE)
    return value


def _live(task: Task | None) -> bool:
    return task is not None and task.live


def named_in(views: Mapping[str, Rows], name: str) -> Task | None:
    """Inside a transaction: the newest task called `name` that is still in the view."""
    index = views.get(NameIndex.name)
    if index is None:
        return None
    task_id = _id(index.get(NAME_PREFIX + name))
    return None if task_id is None else task_from_rows(views["tasks"], task_id)


def keyed_in(views: Mapping[str, Rows], key: str) -> Task | None:
    """Inside a transaction: the task started with run key `key`, unless it was cleaned."""
    index = views.get(NameIndex.name)
    if index is None:
        return None
    task_id = _id(index.get(KEY_PREFIX + key))
    return None if task_id is None else task_from_rows(views["tasks"], task_id)


def start_conflict(views: Mapping[str, Rows], task_id: str, name: str,
                   key: str) -> tuple[str, Task | None]:
    """Why a start of `task_id` must not be recorded: ("key", existing task) when the run key
    is taken, ("name", running task) when another live task has the name, ("", None) if free."""
    if key:
        existing = keyed_in(views, key)
        if existing is not None and existing.id != task_id:
            return "key", existing
    if name:
        other = named_in(views, name)
        if _live(other) and other is not None and other.id != task_id:
            return "name", other
    return "", None


def name_in_use(name: str, task: Task) -> str:
    return f"the name {name} is in use by running task {task.id} ({task.status})"


def by_name(store: Store, name: str, tasks: Mapping[str, Task] | None = None) -> str | None:
    """The id of the newest task in the view called `name`, or None."""
    from projections.checkpoint import load_tasks

    stored = store.view(NameIndex.name, NameIndex.version)
    all_tasks = tasks if tasks is not None else load_tasks(store)
    indexed = _id(stored[0].get(NAME_PREFIX + name)) if stored is not None else None
    if isinstance(indexed, str) and indexed in all_tasks:
        return indexed
    # The newest holder was cleaned (or there is no index yet): the newest one left, else
    # the cleaned one, which `history` can still show.
    named = [t for t in all_tasks.values() if t.name == name]
    if named:
        return max(named, key=lambda t: t.spawned_seq).id
    return indexed if isinstance(indexed, str) else None


def by_key(store: Store, key: str) -> str | None:
    """The id of the task started with run key `key` (cleaned or not: the caller checks)."""
    stored = store.view(NameIndex.name, NameIndex.version)
    if stored is None:
        return None
    return _id(stored[0].get(KEY_PREFIX + key))


def _id(row: Any) -> str | None:
    """The task id in a name index row (`{"id": ...}`), or None."""
    value = row.get("id") if isinstance(row, dict) else None
    return value if isinstance(value, str) else None
