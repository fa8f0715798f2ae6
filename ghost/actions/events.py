"""`ghost events` as a stream of encoded chunks; a large backlog is encoded by several processes.

Exporting is all CPU: decoding msgpack and encoding JSON, about 4.5 us per event in one process.
A backlog of at least PARALLEL_FROM events is therefore cut into chunks of CHUNK events by
sequence number, and with N usable CPUs, N-1 forked workers each encode every N-th chunk while
this process encodes the others. Workers only encode: each sends its chunks back through its own
pipe, and this process hands the chunks out strictly in sequence order, so the output is exactly
what one process would write. Events committed after the backlog was measured come next, from
the ordinary feed (and, with --follow, forever after).

No LMDB environment crosses a fork: the store is closed before the workers are forked, and
every process opens its own. Workers ignore Ctrl+C (this process ends them) and exit as soon as
this process stops reading.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from itertools import starmap
from typing import BinaryIO, NoReturn

from events import codec
from events.types import Corrupt, Event
from ghost.actions import audit
from ghost.errors import USAGE, GhostError
from ghost.faults import crash_point, fork_with_pipe
from ghost.state import records
from ghost.state import store as state

PARALLEL_FROM = 50_000  # events: below this, forking costs more than it saves
MAX_WORKERS = 4
WORKERS_VAR = "GHOST_EXPORT_WORKERS"  # how many processes may encode; 1 turns workers off
_DATA, _FAILED = b"D", b"E"

Encoder = Callable[[Iterable[Event | Corrupt], str], bytes]


@dataclass(frozen=True, slots=True)
class Export:
    store_id: str
    chunks: Generator[bytes, None, None]  # encoded records; b"" while a follow waits for news


def stream(after: int, follow: bool, fmt: str,
           stop: Callable[[], bool] | None = None) -> Export:
    """The log after seq `after`, encoded as `fmt` ("jsonl" or "msgpack"), chunk by chunk."""
    encode: Encoder = records.jsonl if fmt == "jsonl" else records.msgpack_records
    found = audit.feed(after, follow, stop)  # checks the cursor, opens the store
    workers = worker_count()

    def chunks() -> Generator[bytes, None, None]:
        batches = found.batches
        if workers > 1 and found.last - after >= PARALLEL_FROM and _single_threaded():
            yield from _parallel(after, found.last, encode, found.store_id, workers)
            batches = audit.feed(found.last, follow, stop).batches  # whatever came since
        for batch in batches:
            yield encode(batch, found.store_id)

    return Export(found.store_id, chunks())


def worker_count() -> int:
    """Processes that may encode a backlog: the usable CPUs (at most MAX_WORKERS), or
    $GHOST_EXPORT_WORKERS."""
    value = os.environ.get(WORKERS_VAR, "")
    if not value:
        usable = getattr(os, "sched_getaffinity", None)  # Linux: the CPUs we may run on
        return min(MAX_WORKERS, len(usable(0)) if usable else os.cpu_count() or 1)
    if not value.isdigit() or int(value) < 1:
        raise GhostError(f"invalid {WORKERS_VAR}={value!r}: must be a whole number of 1 or more",
                         USAGE)
    return int(value)


def _single_threaded() -> bool:
    """fork() without exec is safe only when no other thread may hold a lock."""
    import threading

    return threading.active_count() == 1


def _parallel(after: int, last: int, encode: Encoder, store_id: str,
              workers: int) -> Iterator[bytes]:
    spans = [(start, min(audit.CHUNK, last - start)) for start in range(after, last, audit.CHUNK)]
    state.close_stores()  # no LMDB environment may cross a fork
    children: list[tuple[int, BinaryIO]] = []
    try:
        try:
            for index in range(1, workers):
                children.append(_fork(spans[index::workers], encode, store_id, children))
        except OSError:  # no process to spare (EAGAIN, ENOMEM): do it all here instead
            _end_all(children)
            workers = 1
        for number, span in enumerate(spans):
            owner = number % workers
            yield _encoded(span, encode, store_id) if owner == 0 else \
                _received(children[owner - 1][1])
    finally:
        _end_all(children)


def _fork(spans: list[tuple[int, int]], encode: Encoder, store_id: str,
          siblings: list[tuple[int, BinaryIO]]) -> tuple[int, BinaryIO]:
    """Start a worker for `spans`: its pid and the pipe its chunks come through."""
    pid, read_end, write_end = fork_with_pipe("export:fork-worker")
    if pid == 0:
        os.close(read_end)
        for _, pipe in siblings:
            pipe.close()  # the other workers' pipes are the parent's to read
        _work(spans, encode, store_id, write_end)
    os.close(write_end)
    return pid, os.fdopen(read_end, "rb")


def _end_all(children: list[tuple[int, BinaryIO]]) -> None:
    while children:
        pid, pipe = children.pop()
        pipe.close()
        _end(pid)


def _encoded(span: tuple[int, int], encode: Encoder, store_id: str) -> bytes:
    store = state.open_store(write=False)
    if store is None:  # the data dir went away under us
        raise GhostError("the event store disappeared during the export")
    with state.store_errors():
        return encode(starmap(codec.decode, store.read_raw(*span)), store_id)


def _received(pipe: BinaryIO) -> bytes:
    header = pipe.read(9)
    if len(header) < 9:
        raise GhostError("an export worker ended before sending its events")
    size = int.from_bytes(header[1:], "big")
    body = pipe.read(size)
    if len(body) < size:
        raise GhostError("an export worker ended before sending its events")
    if header[:1] == _FAILED:  # the worker's own error: "exit code\nmessage"
        code, _, message = body.decode(errors="replace").partition("\n")
        raise GhostError(message, int(code))
    return body


def _work(spans: list[tuple[int, int]], encode: Encoder, store_id: str,
          fd: int) -> NoReturn:
    """A worker: encode `spans` in order, send each through `fd`, exit. Never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
        with os.fdopen(fd, "wb") as out:
            try:
                crash_point("export:worker")
                for span in spans:
                    body = _encoded(span, encode, store_id)
                    out.write(_DATA + len(body).to_bytes(8, "big"))
                    out.write(body)
                    out.flush()
            except BrokenPipeError:
                pass  # the parent stopped reading: its reader went away, or it failed
            except Exception as exc:  # sent to the parent, which reports it as its own
                code = 1
                failure = exc if isinstance(exc, GhostError) else GhostError(str(exc) or repr(exc))
                body = f"{failure.exit_code}\n{failure.message}".encode()
                out.write(_FAILED + len(body).to_bytes(8, "big") + body)
                out.flush()
    finally:
        os._exit(code)  # never the parent's atexit handlers or buffered output


def _end(pid: int) -> None:
    """Reap a worker; one still running (this process stopped early) is killed first."""
    done, _ = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
