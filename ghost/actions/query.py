"""`list`, `status` and reading a log: tasks as they are (reconciled) or were, and output.

A log is read from `logs/<id>.log` in the current data dir, never from the stored path (see
ghost.state.logs.task_log)."""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import Any, NamedTuple, Protocol, TypeVar

from ghost.errors import TaskNotFound
from ghost.state import listing as listing_cache
from ghost.state import logs
from ghost.state import tasks as core
from ghost.state.store import open_store, store_errors
from projections.checkpoint import tasks_at
from projections.tasks import Task


def listing(status: str = "all", at: str | None = None, *, last: int | None = None,
            since: str | None = None, group: str | None = None) -> list[Task]:
    """Tasks with `status` (or all), newest first; as of `at` when given; only those started
    at or after `since`, and only the `last` newest, when given. Full records (JSON, MCP)."""
    store = open_store(write=False)
    if at is None:
        found = core.load(store)
    else:
        with store_errors():
            found = tasks_at(store, _parse_time(at))
    return _chosen(found.values(), status, last, since, group)


class TableRows(NamedTuple):
    rows: list[Task | listing_cache.Row]
    # names the set of finished rows when `rows` holds every task (no filter): what a cache
    # of their rendering is keyed on (ghost.state.listing.version)
    version: str | None


def table_rows(status: str = "all", at: str | None = None, *, last: int | None = None,
               since: str | None = None, group: str | None = None) -> TableRows:
    """The same tasks as `listing`, as cheap to read as the table needs: finished tasks come
    as short rows from ghost.state.listing, so a long history costs little per call."""
    if at is not None:
        return TableRows(list(listing(status, at, last=last, since=since, group=group)), None)
    store = open_store(write=False)
    if store is None:
        return TableRows([], None)
    with store_errors():
        found = listing_cache.load(store)
        live = core.reconcile(store, found.live)
    rows: list[Task | listing_cache.Row] = [*found.finished.values(), *live.values()]
    every = status == "all" and last is None and since is None and group is None
    return TableRows(_chosen(rows, status, last, since, group),
                     listing_cache.version(store, found) if every else None)


def rendered_rows(key: str) -> Any:
    """A rendering of the finished rows kept by `keep_rendered` under `key`, or None."""
    store = open_store(write=False)
    return None if store is None else listing_cache.read_lines(store, key)


def keep_rendered(key: str, value: Any) -> None:
    store = open_store(write=False)
    if store is not None:
        listing_cache.save_lines(store, key, value)


def _parse_time(text: str) -> int:
    from ghost.timeparse import parse_time  # only --at/--since need it: not on `list`'s path

    return parse_time(text)


class _Shown(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def started_ns(self) -> int: ...
    @property
    def spawned_seq(self) -> int: ...
    @property
    def group(self) -> str: ...


Item = TypeVar("Item", bound=_Shown)


def _chosen(items: Iterable[Item], status: str, last: int | None, since: str | None,
            group: str | None) -> list[Item]:
    since_ns = _parse_time(since) if since else None
    chosen = [t for t in items if (status == "all" or t.status == status)
              and (since_ns is None or t.started_ns >= since_ns)
              and (group is None or t.group == group)]
    newest = attrgetter("spawned_seq")
    if last is not None and last < len(chosen):
        return heapq.nlargest(last, chosen, key=newest)
    return sorted(chosen, key=newest, reverse=True)


def status(ident: str, at: str | None = None) -> core.Observed:
    store = open_store(write=False)
    if at is None:
        return core.observe(core.get(store, ident))
    task_id = core.resolve(store, ident)
    with store_errors():
        task = tasks_at(store, _parse_time(at)).get(task_id)
    if task is None:
        raise TaskNotFound(task_id, f" at {at} (not started yet, or already cleaned)")
    return core.Observed(task)


def skipped_note() -> str | None:
    """One line about events this ghost could not use (newer types, corrupt values), if any."""
    from projections.checkpoint import skipped_events

    with store_errors():
        counts = skipped_events(open_store(write=False))
    parts = []
    if counts["unknown"]:
        parts.append(f"{counts['unknown']} event(s) from a newer ghost were skipped")
    if counts["corrupt"]:
        seqs = ", ".join(map(str, counts["corrupt_seqs"]))
        more = ", ..." if counts["corrupt"] > len(counts["corrupt_seqs"]) else ""
        parts.append(f"{counts['corrupt']} corrupt event(s) were skipped (seq {seqs}{more}; "
                     "run `ghost doctor`)")
    return "Warning: " + "; ".join(parts) if parts else None


def read_log(ident: str, tail: int | None = None) -> tuple[Task, Iterator[bytes]]:
    """A task and its output (all of it, or the last `tail` lines), byte for byte, in chunks."""
    task = status(ident).task
    if task.io.get("log_max"):  # rotated pieces <id>.log.N ... <id>.log read as one
        from ghost.state import logindex

        return task, logindex.read_opened(logindex.open_pieces(logs.task_log(task.id)), tail)
    _, fd = logs.open_task_log(task.id)  # opened now: a refusal comes before any output
    return task, logs.read_fd(fd, tail)


def log_tail(ident: str, lines: int | None, max_bytes: int) -> tuple[Task, int, int, bytes]:
    """The task, and (start, end, bytes) of its last `lines` lines, at most `max_bytes`: a
    bounded read, however large the log is (see ghost.state.logs.read_tail)."""
    task = status(ident).task
    _, fd = logs.open_task_log(task.id)
    try:
        start, end, data = logs.read_tail(fd, lines, max_bytes)
    finally:
        os.close(fd)
    return task, start, end, data
