"""`attach`: an interactive session with a --pty task. Never prints, never touches a terminal
(ghost.cli.interactive does that).

Keystrokes go to the task through its inbox (each read is one `w` request, not waiting for its
answer); output is read from the log itself, so any number of sessions see the same screen and
the pump keeps no per-session state. The log is read from its end minus a little recent output,
follows a rotation (a new file at the log's path) and is read to its end before the session
reports the task's end (see Session.ended).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from ghost.actions.send import connect, interactive_task, pack_size, record_input, record_resize
from ghost.process import inbox
from ghost.state import logs
from ghost.state.logindex import next_piece
from projections.tasks import Task

RECENT = 1 << 14  # output replayed on attach, so the screen makes sense
READ = 1 << 16
END_WAIT = 5.0


@dataclass(slots=True)
class Session:
    task: Task
    sock: inbox.Connection
    path: str
    fd: int
    offset: int
    via: str
    sent: int = 0
    replies: bytearray = field(default_factory=bytearray)
    size: tuple[int, int] | None = None

    def fileno(self) -> int:
        """Readable when the monitor answers or closes (the task ended)."""
        return int(self.sock.fileno())

    def output(self) -> bytes:
        """Output written since the last call (follows a rotation of the log)."""
        parts = []
        while True:
            data = os.pread(self.fd, READ, self.offset)
            if data:
                self.offset += len(data)
                parts.append(data)
                continue
            if not self._rotated():
                return b"".join(parts)

    def _rotated(self) -> bool:
        """The log was rotated and this piece is drained: switch to the new one."""
        if os.pread(self.fd, 1, self.offset):
            return True  # written after our last read, before the rename: read it first
        new = next_piece(self.path, self.fd)
        if new is None:
            return False
        os.close(self.fd)
        self.fd, self.offset = new, 0
        return True

    def send(self, data: bytes) -> None:
        self.sock.sendall(inbox.pack(inbox.WRITE, data))
        self.sent += len(data)

    def resize(self, cols: int, rows: int) -> None:
        if self.size == (cols, rows):
            return
        self.size = (cols, rows)
        self.sock.sendall(inbox.pack(inbox.RESIZE, pack_size(cols, rows)))
        record_resize(self.task, cols, rows, self.via)

    def answers(self) -> bool:
        """Read the monitor's answers; False once it closed the inbox (the task ended)."""
        try:
            data = self.sock.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.replies += data
        del self.replies[:self.replies.rfind(b"\n") + 1]  # answers to keystrokes: not needed
        return bool(data)

    def ended(self) -> tuple[Task, bytes]:
        """The task as recorded once it ended (waited for briefly), and the output not shown
        yet. The monitor closes the inbox when the task ends but copies what the task wrote
        last into the log after that; it records the end only once the log is complete, so
        the rest of the output is read after the end is seen, not before."""
        from ghost.actions.wait import wait_for_end

        task = wait_for_end([self.task.id], END_WAIT).tasks[0]
        return task, self.output()

    def close(self) -> None:
        """End the session (the task runs on) and record how much was typed."""
        self.sock.close()
        os.close(self.fd)
        if self.sent:
            record_input(self.task, self.sent, False, self.via)


def attach(ident: str, *, via: str) -> tuple[Session, bytes]:
    """A session with the running PTY task `ident`, and its recent output to show first."""
    task = interactive_task(ident, need_pty=True)
    sock = connect(task)
    try:
        path, fd = logs.open_task_log(task.id)
    except BaseException:
        sock.close()
        raise
    end = os.fstat(fd).st_size
    start = max(0, end - RECENT)
    recent = os.pread(fd, end - start, start)
    # Keys are sent blocking (a long paste waits for the task to take it); answers are read
    # without waiting (recv with MSG_DONTWAIT).
    sock.settimeout(None)
    return Session(task, sock, path, fd, start + len(recent), via), recent
