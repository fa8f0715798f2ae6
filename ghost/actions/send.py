"""`send` and `resize`: input and terminal size for a task started with --pty or --stdin.

Both go to the task's monitor over its inbox socket (ghost.process.inbox) and are recorded
afterwards, by size only: what was sent is never stored anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from events import types as ev
from ghost import datadir
from ghost.actor import actor
from ghost.errors import USAGE, GhostError
from ghost.process import inbox
from ghost.state.store import open_store, store_errors
from ghost.state.tasks import describe_end, get
from projections.tasks import Task

MAX_SIZE = 65535  # a terminal dimension is an unsigned short


@dataclass(frozen=True, slots=True)
class Sent:
    task: Task
    bytes: int
    eof: bool


def input_kind(task: Task) -> str:
    return str(task.io.get("input") or "none")


def inbox_path(task: Task) -> str:
    return inbox.socket_path(datadir.data_dir(), task.id)


def interactive_task(ident: str, need_pty: bool = False) -> Task:
    """The running task `ident`, refused with one clear reason unless it takes input."""
    task = get(open_store(write=False), ident)
    kind = input_kind(task)
    if kind == "none":
        raise GhostError(f"task {task.id} takes no input (start it with --pty or --stdin)")
    if need_pty and kind != "pty":
        raise GhostError(f"task {task.id} has no terminal (start it with --pty)")
    if not task.running:
        raise GhostError(f"task {task.id} has ended ({describe_end(task)}); it takes no input")
    return task


def connect(task: Task) -> inbox.Connection:
    try:
        return inbox.connect(inbox_path(task))
    except inbox.Refused as exc:
        raise GhostError(f"cannot reach task {task.id}: {exc}") from None


def send(ident: str, data: Iterable[bytes], *, eof: bool = False, via: str) -> Sent:
    """Write `data` (chunks; each one reaches the task whole, never interleaved with another
    sender's) to the task's input, then close it when `eof`; record the byte count."""
    task = interactive_task(ident)
    sock = connect(task)
    total = 0
    try:
        for chunk in data:
            for start in range(0, len(chunk), inbox.MAX_MESSAGE):
                piece = chunk[start:start + inbox.MAX_MESSAGE]
                _request(task, sock, inbox.WRITE, piece)
                total += len(piece)
        if eof:
            _request(task, sock, inbox.EOF)
    finally:
        sock.close()
        if total or eof:
            record_input(task, total, eof, via)
    return Sent(task, total, eof)


def _request(task: Task, sock: inbox.Connection, op: bytes, payload: bytes = b"") -> str:
    try:
        return inbox.request(sock, op, payload)
    except inbox.Refused as exc:
        raise GhostError(f"cannot send to task {task.id}: {exc}") from None


def record_input(task: Task, size: int, eof: bool, via: str) -> None:
    store = open_store(write=True)
    assert store is not None
    with store_errors():
        store.append([ev.make(ev.INPUT_SENT, task.id, bytes=size, eof=eof, actor=actor(via))])


def check_size(cols: int, rows: int) -> None:
    for name, value in (("columns", cols), ("rows", rows)):
        if not 1 <= value <= MAX_SIZE:
            raise GhostError(f"invalid {name} {value}: must be 1 to {MAX_SIZE}", USAGE)


def resize(ident: str, cols: int, rows: int, *, via: str) -> Task:
    """Set the task's terminal size (the task gets SIGWINCH) and record it."""
    check_size(cols, rows)
    task = interactive_task(ident, need_pty=True)
    sock = connect(task)
    try:
        _request(task, sock, inbox.RESIZE, pack_size(cols, rows))
    finally:
        sock.close()
    record_resize(task, cols, rows, via)
    return task


def pack_size(cols: int, rows: int) -> bytes:
    return cols.to_bytes(2, "little") + rows.to_bytes(2, "little")


def record_resize(task: Task, cols: int, rows: int, via: str) -> None:
    store = open_store(write=True)
    assert store is not None
    with store_errors():
        store.append([ev.make(ev.RESIZED, task.id, cols=cols, rows=rows, actor=actor(via))])
