"""`doctor`: verify the whole event log, the stored views and the data dir's safety.

The check reads every event once, in sequence order, and proves what the rest of ghost relies on:
every value decodes (unknown types from a newer ghost are counted, not errors), sequence numbers
run 1..N without gaps, the per-task index lists exactly each task's events, and the task view
kept in the store equals a rebuild from the first event. It also checks that the data dir and
everything in it are private (dirs 0700, files 0600, owned by the user, no symlinks).
It also reports a store it cannot read at all (a truncated or overwritten file, damaged pages)
and output logs of tasks the store does not know (a store lost or replaced beside its logs).
Exit status: 0 healthy, 65 when the log or a view is damaged, 77 when only the files are unsafe.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from events.store import Store, StoreError
from events.types import Corrupt, Event
from ghost import datadir
from ghost.errors import NOPERM, GhostError
from ghost.state.store import DATA_ERR, as_ghost_error, refuse_emptied
from projections.checkpoint import VERSION, VIEWS, TaskView, load_tasks
from projections.tasks import Task, fold

SETTLING = 10.0  # seconds: a log this new may belong to a task whose start is being recorded
MAX_LISTED = 20  # problems of one kind listed one by one; the rest are counted


@dataclass
class Report:
    data_dir: str
    store_exists: bool = False
    events: int = 0
    last_seq: int = 0
    unknown: dict[str, list[int]] = field(default_factory=dict)  # type -> seqs
    corrupt: list[tuple[int, str]] = field(default_factory=list)  # (seq, reason)
    gaps: list[tuple[int, int]] = field(default_factory=list)  # missing seq ranges
    index_problems: list[str] = field(default_factory=list)
    tasks: int = 0
    view_applied: int | None = None  # None: no stored view (rebuilt by the next write)
    view_problems: list[str] = field(default_factory=list)
    files_checked: int = 0
    file_problems: list[str] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)  # damage that stopped a check
    orphan_logs: list[str] = field(default_factory=list)  # logs of tasks the store lacks

    @property
    def data_damaged(self) -> bool:
        return bool(self.corrupt or self.gaps or self.index_problems or self.view_problems
                    or self.store_problems or self.orphan_logs)

    @property
    def exit_code(self) -> int:
        if self.data_damaged:
            return DATA_ERR
        return NOPERM if self.file_problems else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "data_dir": self.data_dir, "store_exists": self.store_exists,
            "events": self.events, "last_seq": self.last_seq,
            "unknown": {k: v for k, v in self.unknown.items()},
            "corrupt": [{"seq": s, "reason": r} for s, r in self.corrupt],
            "gaps": [{"from": a, "to": b} for a, b in self.gaps],
            "index_problems": self.index_problems, "tasks": self.tasks,
            "view_applied": self.view_applied, "view_problems": self.view_problems,
            "files_checked": self.files_checked, "file_problems": self.file_problems,
            "store_problems": self.store_problems, "orphan_logs": self.orphan_logs,
            "healthy": self.exit_code == 0, "exit_code": self.exit_code,
        }


# -- the log -------------------------------------------------------------------------------

def _check_log(store: Store, report: Report) -> None:
    """One pass over the log: decoding, sequence, per-task seqs, and the view at two points."""
    stored = store.view(TaskView.name, VERSION)
    applied = stored[1] if stored is not None else None
    report.view_applied = applied
    expected = 1
    by_task: dict[str, list[int]] = {}
    full: dict[str, Task] = {}
    at_applied: dict[str, Task] | None = {} if applied == 0 else None
    for item in store.scan():
        if item.seq != expected:
            report.gaps.append((expected, item.seq - 1))
        expected = item.seq + 1
        report.events += 1
        report.last_seq = item.seq
        if isinstance(item, Corrupt):
            report.corrupt.append((item.seq, item.reason))
        elif not item.known:
            report.unknown.setdefault(item.type, []).append(item.seq)
        if isinstance(item, Event):
            by_task.setdefault(item.task, []).append(item.seq)
        fold(full, item)
        if applied is not None and item.seq == applied:
            at_applied = dict(full)
    _check_index(store, by_task, {s for s, _ in report.corrupt}, report)
    report.tasks = len(full)
    if stored is not None:
        _check_view(stored[0], applied or 0, at_applied, report)
    shown = load_tasks(store)
    if shown != full:
        differ = sorted(k for k in shown.keys() | full.keys() if shown.get(k) != full.get(k))
        report.view_problems.append(
            f"the view ghost shows differs from a full rebuild for {len(differ)} task(s): "
            + ", ".join(differ[:MAX_LISTED]))


def _check_index(store: Store, by_task: dict[str, list[int]], corrupt: set[int],
                 report: Report) -> None:
    for task, seqs in by_task.items():
        if len(task.encode()) >= 400:
            continue  # ids this long are not indexed (LMDB keys are at most 511 bytes)
        indexed = [e.seq for e in store.task_events(task)]
        listed = [s for s in indexed if s not in corrupt]
        if listed != seqs:
            report.index_problems.append(
                f"the index of task {task} lists seqs {_short(listed)}, the log has "
                f"{_short(seqs)}")
    for task in store.task_ids("", limit=1 << 62):
        if task not in by_task and not any(e.seq in corrupt for e in store.task_events(task)):
            report.index_problems.append(f"the index lists task {task}, which has no events")


def _check_view(rows: dict[str, Any], applied: int, at_applied: dict[str, Task] | None,
                report: Report) -> None:
    if at_applied is None:
        report.view_problems.append(
            f"the stored view claims to have applied seq {applied}, beyond the log's last "
            f"seq {report.last_seq}")
        return
    stored: dict[str, Task] = {}
    for key, row in rows.items():
        try:
            stored[key] = Task.from_row(row)
        except (TypeError, ValueError, AttributeError) as exc:
            report.view_problems.append(f"stored view row {key} is malformed: {exc}")
    for key in sorted(stored.keys() | at_applied.keys()):
        if key in stored and stored.get(key) != at_applied.get(key):
            mine, theirs = stored.get(key), at_applied.get(key)
            report.view_problems.append(f"stored view row {key} differs from a rebuild up to "
                                        f"seq {applied}: {_diff(mine, theirs)}")
        elif key not in stored:
            report.view_problems.append(f"stored view lacks task {key} (seq <= {applied})")


def _diff(a: Task | None, b: Task | None) -> str:
    if a is None or b is None:
        return "present in only one of them"
    da, db = a.to_row(), b.to_row()
    names = [k for k in da if da[k] != db.get(k)]
    return ", ".join(f"{k} {da[k]!r} != {db.get(k)!r}" for k in names[:5])


def _short(seqs: list[int]) -> str:
    return "[" + ", ".join(map(str, seqs[:8])) + (", ...]" if len(seqs) > 8 else "]")


# -- the files -----------------------------------------------------------------------------

def _check_files(base: str, report: Report) -> None:
    """Every dir 0700 and file 0600 (no group/other bits), ours, and no symlinks anywhere."""
    uid = os.geteuid()
    for root, dirs, files in os.walk(base, followlinks=False):
        for name in [*dirs, *files, None]:
            path = root if name is None else os.path.join(root, name)
            if name is not None and os.path.isdir(path) and not os.path.islink(path):
                continue  # directories are checked as `root` of their own walk step
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # removed while we looked (a cleanup ran)
            report.files_checked += 1
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                report.file_problems.append(f"{path} is a symlink; ghost never follows one")
            elif st.st_uid != uid:
                report.file_problems.append(f"{path} is owned by uid {st.st_uid}, not {uid}")
            elif stat.S_ISDIR(st.st_mode) and mode != 0o700:
                report.file_problems.append(f"{path} has mode {mode:04o}; expected 0700")
            elif stat.S_ISREG(st.st_mode) and mode & 0o077:
                report.file_problems.append(f"{path} has mode {mode:04o}; expected 0600")


# -- entry point ---------------------------------------------------------------------------

def verify() -> Report:
    """Check the data dir, the whole log and the views; never writes an event."""
    base = datadir.data_dir()
    report = Report(base)
    try:
        if datadir.prepare(create=False) is None:
            return report  # nothing recorded yet: nothing can be wrong
    except GhostError as exc:  # an unsafe dir is reported, and nothing in it is opened
        report.file_problems.append(exc.message)
        return report
    _check_files(base, report)
    store = _open(base, report)
    known: set[str] = set()
    if store is not None:
        report.store_exists = True
        try:
            _damage_noted(report, lambda: _check_log(store, report))
            _damage_noted(report, lambda: known.update(store.task_ids("", limit=1 << 62)))
        finally:
            store.close()
    if report.store_exists:
        _check_orphan_logs(base, known, report)
    return report


def _open(base: str, report: Report) -> Store | None:
    """The store, or None when there is none or it cannot be opened (noted as damage)."""
    try:
        refuse_emptied(base, datadir.store_dir(base))
    except GhostError as exc:  # opening would start a new, empty store over a lost one
        report.store_exists = True
        report.store_problems.append(exc.message)
        return None
    try:
        return Store.open(datadir.store_dir(base), create=False, views=VIEWS,
                          map_floor=datadir.map_floor())
    except StoreError as exc:
        if exc.kind != "damaged":
            raise as_ghost_error(exc) from exc
        report.store_exists = True
        report.store_problems.append(str(exc))
        return None


def _damage_noted(report: Report, check: Callable[[], object]) -> None:
    """Run one check; damage that stops it is a finding of the report, not a crash."""
    try:
        check()
    except StoreError as exc:
        if exc.kind != "damaged":
            raise as_ghost_error(exc) from exc
        report.store_problems.append(str(exc))


def _check_orphan_logs(base: str, known: set[str], report: Report) -> None:
    """Logs whose task the store does not know: their history was lost (or never written)."""
    logs = datadir.logs_dir(base)
    try:
        names = sorted(os.listdir(logs))
    except FileNotFoundError:
        return
    for name in names:
        task = name.removesuffix(".log")
        if task == name or task in known:
            continue
        try:
            created = os.lstat(os.path.join(logs, name)).st_ctime
        except FileNotFoundError:
            continue  # cleaned while we looked
        if time.time() - created >= SETTLING:
            report.orphan_logs.append(os.path.join(logs, name))
