"""The task's inbox: a 0600 Unix socket in the data dir through which `send`, `resize` and
`attach` reach the task's input. The pump (ghost.process.pump) serves it; clients use
`connect` and `request`.

Wire format, both ways in order: a request is one op byte, a 4-byte little-endian length and
the payload; every request gets one reply line, `ok ...` or `error MESSAGE`. A `w` request's
bytes enter the task's input as one piece (never interleaved with another sender's), and its
reply comes once the kernel has taken all of them. Ops: `w` write, `e` end of input (close the
pipe; ^D on a PTY), `z` resize (cols and rows, 2 bytes each), `i` info (`ok pty|pipe|none`).

Like the pump, this module imports only `os` and the C `_socket` at the top: it lives in the
waiter for the whole life of the task. Socket paths are used as /proc/self/fd/N/NAME, with N
a directory fd, so a long data dir never hits the 108-byte limit of a socket address.
"""

from __future__ import annotations

import _socket
import os

TYPE_CHECKING = False  # `typing`/`select` are not imported at run time (the waiter stays lean)
if TYPE_CHECKING:
    from select import poll

MAX_MESSAGE = 1 << 20  # one request's payload; `send -` sends longer input in pieces
MAX_QUEUED = 4 << 20  # input not yet taken by the task; beyond it senders wait
SOCKET_DIR = "run"
WRITE, EOF, RESIZE, INFO = b"w", b"e", b"z", b"i"
CTRL_D = b"\x04"
Connection = _socket.socket  # a client's connection (the type, for annotations)


class Refused(Exception):
    """The inbox cannot be used (missing, unsafe, or its monitor is gone); says why."""


def socket_path(data_dir: str, task: str) -> str:
    return os.path.join(data_dir, SOCKET_DIR, f"{task}.sock")


def _short(path: str) -> tuple[int, str]:
    """(directory fd, short path to `path` through it): the caller closes the fd."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    dfd = os.open(os.path.dirname(path), flags)
    return dfd, f"/proc/self/fd/{dfd}/{os.path.basename(path)}"


def listen(path: str) -> int:
    """Create the inbox socket at `path` (its directory must exist, 0700) and return its fd."""
    dfd, short = _short(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            os.unlink(short)  # a stale socket of a task with this very id cannot exist; be safe
        except FileNotFoundError:
            pass
        sock.bind(short)
        os.chmod(short, 0o600)  # just made by us, in a 0700 directory
        sock.listen(16)
        return sock.detach()
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(dfd)


def pack(op: bytes, payload: bytes = b"") -> bytes:
    return op + len(payload).to_bytes(4, "little") + payload


# -- client side ---------------------------------------------------------------------------

def connect(path: str, timeout: float = 10.0) -> _socket.socket:
    """A connection to the inbox at `path`; refuses a symlink or a socket someone else owns."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise Refused("its monitor is not listening (the task has ended or its monitor "
                      "died)") from None
    if stat.S_ISLNK(st.st_mode):
        raise Refused(f"refusing inbox {path}: it is a symlink")
    if not stat.S_ISSOCK(st.st_mode):
        raise Refused(f"refusing inbox {path}: it is not a socket")
    if st.st_uid != os.geteuid():
        raise Refused(f"refusing inbox {path}: it is owned by uid {st.st_uid}, not by you")
    dfd, short = _short(path)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(short)
    except OSError as exc:
        sock.close()
        raise Refused("its monitor is not listening (the task has ended or its monitor "
                      f"died: {exc.strerror})") from None
    finally:
        os.close(dfd)
    return sock


def request(sock: _socket.socket, op: bytes, payload: bytes = b"") -> str:
    """Send one request and return the text after `ok` (raises Refused with the error)."""
    try:
        sock.sendall(pack(op, payload))
        line = read_reply(sock)
    except TimeoutError:
        raise Refused("the task did not take its input in time (is it reading?)") from None
    except OSError as exc:
        raise Refused(f"the connection to its monitor failed: {exc.strerror}") from None
    return line


def read_reply(sock: _socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(256)
        if not chunk:
            raise Refused("its monitor closed the connection (the task has ended)")
        data += chunk
    word, _, rest = data.decode(errors="replace").strip().partition(" ")
    if word != "ok":
        raise Refused(rest or "the monitor refused the request")
    return rest


# -- server side (in the pump) -------------------------------------------------------------

class Server:
    """Serves the inbox inside the pump's poll loop; never blocks on a client or the task."""

    def __init__(self, listen_fd: int, path: str, input_fd: int, input_kind: str) -> None:
        self.listen_fd = listen_fd
        self.listener = _socket.socket(fileno=listen_fd)
        self.listener.setblocking(False)
        self.path = path
        self.input_fd = input_fd
        self.kind = input_kind  # "pty", "pipe" or "none"
        if input_fd >= 0:
            os.set_blocking(input_fd, False)
        self.clients: dict[int, bytearray] = {}
        self.queue = bytearray()  # input accepted, not yet taken by the task
        self.taken = 0  # bytes of input the task has taken so far
        self.queued = 0  # bytes ever queued (taken + len(queue))
        self.waiting: list[tuple[int, int, bytes]] = []  # (client fd, queued mark, request op)
        self.registered: dict[int, int] = {}
        self.uid = os.geteuid()

    def arm(self, poller: poll) -> None:
        """Interest for the next poll: new clients, requests (unless the queue is full), and
        the task's input while there is something to give it."""
        want = {self.listen_fd: 1}
        reading = 1 if len(self.queue) < MAX_QUEUED else 0
        for fd in self.clients:
            want[fd] = reading
        if self.input_fd >= 0 and self.waiting:
            want[self.input_fd] = 4  # POLLOUT
        for fd, mask in list(self.registered.items()):
            if want.get(fd) != mask:
                poller.unregister(fd)
                del self.registered[fd]
        for fd, mask in want.items():
            if fd not in self.registered:
                poller.register(fd, mask)
                self.registered[fd] = mask

    def handle(self, fd: int, events: int, poller: poll) -> None:
        if fd == self.listen_fd:
            self._accept()
        elif fd == self.input_fd:
            self._feed()
        elif fd in self.clients:
            self._read(fd, poller)

    def _accept(self) -> None:
        try:
            fd, _ = self.listener._accept()  # type: ignore[attr-defined]
        except OSError:
            return
        conn = _socket.socket(fileno=fd)
        cred = conn.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        conn.detach()
        uid = int.from_bytes(cred[4:8], "little")
        if uid != self.uid and uid != 0:
            os.close(fd)  # the socket is 0600: only root could get here besides us
            return
        os.set_blocking(fd, False)
        self.clients[fd] = bytearray()

    def _read(self, fd: int, poller: poll) -> None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._drop(fd, poller)
            return
        buf = self.clients[fd]
        buf += data
        while len(buf) >= 5:
            size = int.from_bytes(buf[1:5], "little")
            if size > MAX_MESSAGE:
                self._reply(fd, f"error a request may carry at most {MAX_MESSAGE} bytes")
                self._drop(fd, poller)
                return
            if len(buf) < 5 + size:
                break
            op, payload = bytes(buf[:1]), bytes(buf[5:5 + size])
            del buf[:5 + size]
            self._request(fd, op, payload)
        if self.waiting:
            self._feed()

    def _request(self, fd: int, op: bytes, payload: bytes) -> None:
        if op == INFO:
            self._reply(fd, f"ok {self.kind}")
        elif op == RESIZE:
            self._reply(fd, self._resize(payload))
        elif op not in (WRITE, EOF):
            self._reply(fd, "error unknown request")
        elif self.kind == "none":
            self._reply(fd, "error the task takes no input")
        elif self.input_fd < 0:
            self._reply(fd, "error the task's input is closed")
        else:
            data = payload if op == WRITE else (CTRL_D if self.kind == "pty" else b"")
            self.queue += data
            self.queued += len(data)
            self.waiting.append((fd, self.queued, op))

    def _resize(self, payload: bytes) -> str:
        if self.kind != "pty" or self.input_fd < 0:
            return "error the task has no terminal"
        import fcntl
        import termios

        cols, rows = int.from_bytes(payload[0:2], "little"), int.from_bytes(payload[2:4], "little")
        winsize = rows.to_bytes(2, "little") + cols.to_bytes(2, "little") + bytes(4)
        try:
            # The kernel sends SIGWINCH to the terminal's foreground process group.
            fcntl.ioctl(self.input_fd, termios.TIOCSWINSZ, winsize)
        except OSError as exc:
            return f"error cannot resize the terminal: {exc.strerror}"
        return "ok"

    def _feed(self) -> None:
        """Give the task as much queued input as it takes now; answer the senders served."""
        while self.queue and self.input_fd >= 0:
            try:
                n = os.write(self.input_fd, self.queue[:1 << 16])
            except BlockingIOError:
                break
            except OSError as exc:
                self._input_gone(f"the task's input is closed ({exc.strerror})")
                return
            del self.queue[:n]
            self.taken += n
        while self.waiting and self.waiting[0][1] <= self.taken:
            fd, _, op = self.waiting.pop(0)
            if op == EOF and self.kind == "pipe" and self.input_fd >= 0:
                os.close(self.input_fd)
                self.input_fd = -1
            self._reply(fd, "ok")

    def _input_gone(self, why: str) -> None:
        for fd, _, _ in self.waiting:
            self._reply(fd, f"error {why}")
        self.waiting.clear()
        self.queue.clear()
        if self.input_fd >= 0:
            os.close(self.input_fd)
            self.input_fd = -1

    def _reply(self, fd: int, line: str) -> None:
        if fd not in self.clients:
            return  # the client left before its answer
        try:
            os.write(fd, line.encode() + b"\n")
        except OSError:
            pass  # a client that does not read its replies gets none; its peers are unaffected

    def _drop(self, fd: int, poller: poll) -> None:
        if fd in self.registered:
            poller.unregister(fd)
            del self.registered[fd]
        del self.clients[fd]
        os.close(fd)
        # Its queued input is still delivered; the answer has nobody to go to (and the fd
        # number may be reused by the next client).
        self.waiting = [(-1 if w == fd else w, mark, op) for w, mark, op in self.waiting]

    def close(self, poller: poll) -> None:
        """The task ended: refuse further requests (the socket goes) and answer those queued."""
        try:
            os.unlink(self.path)
        except OSError:
            pass
        self._input_gone("the task has ended")
        for fd in list(self.registered):
            poller.unregister(fd)
        self.registered.clear()
        for fd in list(self.clients):
            os.close(fd)
        self.clients.clear()
        self.listener.close()
