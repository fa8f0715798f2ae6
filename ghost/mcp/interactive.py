"""The MCP tools for tasks that take input (ghost_send, ghost_resize) and the indexed reading
behind ghost_log's `since`/`stream`/`timestamps`. Plain functions, like ghost.mcp.tools."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field
from typing_extensions import TypedDict

from ghost.mcp.tools import MAX_LOG_BYTES, VIA, LogResult, TaskId


class SendResult(TypedDict):
    id: str
    bytes: int  # how many bytes the task's input took
    eof: bool  # its input was then closed (^D on a terminal)


class ResizeResult(TypedDict):
    id: str
    cols: int
    rows: int


def ghost_send(
    id: TaskId,
    text: Annotated[str, Field(max_length=MAX_LOG_BYTES,
                               description="What to type; a newline is added unless "
                                           "`newline` is false. Empty with eof: only close.")],
    newline: Annotated[bool, Field(description="Add a newline after `text`.")] = True,
    eof: Annotated[bool, Field(description="Then close the task's input (^D on a "
                                           "terminal).")] = False,
) -> SendResult:
    """Send input to a task started with input (ghost_run input 'pty' or 'pipe'): answer a
    prompt, drive a REPL. Only the byte count is recorded, never the text."""
    from ghost.actions.send import send

    data = text.encode() + (b"\n" if newline and text else b"")
    sent = send(id, [data] if data else [], eof=eof, via=VIA)
    return {"id": sent.task.id, "bytes": sent.bytes, "eof": sent.eof}


def ghost_resize(
    id: TaskId,
    cols: Annotated[int, Field(ge=1, le=65535, description="Columns.")],
    rows: Annotated[int, Field(ge=1, le=65535, description="Rows.")],
) -> ResizeResult:
    """Set the terminal size of a task started with input 'pty' (it gets SIGWINCH)."""
    from ghost.actions.send import resize

    task = resize(id, cols, rows, via=VIA)
    return {"id": task.id, "cols": cols, "rows": rows}


def indexed_log(ident: str, tail: int | None, max_bytes: int, since: str | None,
                stream: str | None, timestamps: bool) -> LogResult:
    """ghost_log through the chunk index: bounded like the plain read (lines, then bytes from
    the end); `start`/`end` count bytes of the shaped text, not log offsets."""
    from ghost.actions.logread import Options, read

    task, chunks = read(ident, tail, Options(timestamps, since, None, stream))
    kept: list[bytes] = []
    size = total = 0
    for chunk in chunks:
        kept.append(chunk)
        size += len(chunk)
        total += len(chunk)
        while kept and size - len(kept[0]) >= max_bytes:
            size -= len(kept.pop(0))
    data = b"".join(kept)[-max_bytes:]
    text = data.decode("utf-8", errors="replace")
    encoded = text.encode("utf-8")
    if len(encoded) > max_bytes:
        text = encoded[-max_bytes:].decode("utf-8", errors="ignore")
    result: dict[str, Any] = {"id": task.id, "log_path": task.log_path, "text": text,
                              "truncated": total > len(data), "start": total - len(data),
                              "end": total, "running": task.running}
    return result  # type: ignore[return-value]
