"""Which stream each byte of a task's output came from, for the log view.

Tasks started with --timestamps, --stdin or --log-max have a chunk index beside their log
(ghost.state.logindex): "from this offset on, the bytes came from stdout / stderr". `ghost log
--stream` filters by it through ghost.actions.logread.Cursor; the log view needs the tags
themselves, so `Tagger` is that Cursor (same index reading, same rotation handling) with a
`split` that returns (stream, bytes) parts instead of the bytes a filter keeps. A --pty task
has one stream (its terminal): it gets no Tagger.
"""

from __future__ import annotations

from ghost.actions.logread import Cursor, Options, indexed_task
from ghost.actions.query import log_tail
from ghost.errors import GhostError
from ghost.state.logindex import STREAMS
from projections.tasks import Task

STDERR = STREAMS["stderr"]
UNTAGGED = 0  # bytes no record covers (a race with a rotation): shown as output, unmarked

Parts = list[tuple[int, bytes]]


class Tagger(Cursor):
    """Tags a task's output as `follow_output(lines=False)` delivers it: (bytes, offset in the
    current log file). Opened on the index once; closed by whoever holds it last."""

    def split(self, data: bytes, offset: int) -> Parts:
        if not data:
            return []
        if offset == 0 and self.file_pos > 0:  # a rotation: the chunk is from the new file
            self._rotate()
        self.file_pos = offset + len(data)
        start = self.piece_start + offset
        stop = start + len(data)
        while not self.records or self.records[-1].offset < stop:
            known = self.idx_pos
            self._refresh()  # (reads at most 1 MB of index at a time)
            self._forget_before(start)
            if self.idx_pos == known:
                break
        out: Parts = []
        pos = start
        for i, rec in enumerate(self.records):
            end = self.records[i + 1].offset if i + 1 < len(self.records) else stop
            lo, hi = max(pos, rec.offset), min(stop, end)
            if lo >= hi:
                continue
            if lo > pos:
                out.append((UNTAGGED, data[pos - start:lo - start]))
            out.append((rec.stream, data[lo - start:hi - start]))
            pos = hi
        if pos < stop:
            out.append((UNTAGGED, data[pos - start:]))
        self._forget_before(stop)
        return out

    def _forget_before(self, offset: int) -> None:
        """Drop records wholly before `offset` (keep the one that covers it), in one cut."""
        cut = 0
        while cut + 1 < len(self.records) and self.records[cut + 1].offset <= offset:
            cut += 1
        del self.records[:cut]


def tagger_for(task: Task) -> Tagger | None:
    """A Tagger when the task's output has stream tags; None otherwise (or when its index
    cannot be read: the output is then shown untagged, as for any other task)."""
    if task.io.get("input") == "pty":
        return None
    try:
        _, path = indexed_task(task.id, Options())
        return Tagger(path, Options())
    except GhostError:
        return None


def open_tail(task_id: str, lines: int, max_bytes: int
              ) -> tuple[Task, int, int, Parts, Tagger | None]:
    """The task, and (start, end, tagged parts) of its last `lines` lines, at most `max_bytes`
    (a bounded read: query.log_tail); with the Tagger to go on following it, if it has tags."""
    task, start, end, data = log_tail(task_id, lines, max_bytes)
    tagger = tagger_for(task)
    if tagger is None:
        return task, start, end, [(UNTAGGED, data)], None
    try:
        return task, start, end, tagger.split(data, start), tagger
    except BaseException:
        tagger.close()
        raise
