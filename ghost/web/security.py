"""Who may talk to `ghost serve`: the token, the Host allow-list and the Origin check.

The server runs any command it is asked to, so it is guarded like a root shell for its user:

* every API and WebSocket request carries the token (`Authorization: Bearer TOKEN`, or the
  cookie set by opening the printed URL once), compared in constant time -> else 401;
* the Host header must name this server (`127.0.0.1:PORT`, `localhost:PORT`, ...): a page on
  another site whose DNS name was rebound to 127.0.0.1 sends its own name -> 403;
* a request with an Origin must come from one of those hosts -> 403; a state-changing request
  or a WebSocket authenticated by the cookie (which a browser attaches by itself) must have one.

The dashboard's files (`/`, `/static/...`) need no token: they hold no data. The token lives in
`<data dir>/web-token` (0600, never through a symlink) and survives restarts of the server.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ghost.errors import NOPERM, GhostError
from ghost.web.errors import error_response

TOKEN_FILE = "web-token"
COOKIE = "ghost_token"
PUBLIC = ("/static/", "/favicon.ico")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def token_path(base: str) -> str:
    return os.path.join(base, TOKEN_FILE)


def load_token(base: str, renew: bool = False) -> str:
    """The server's token, created (random, 0600) on first use or when `renew`."""
    path = token_path(base)
    if renew:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # another server made it first: use theirs
        return _read(path)
    try:
        os.write(fd, token.encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return token


def _read(path: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise GhostError(f"cannot read the token file {path}: {exc.strerror} (a symlink is "
                         "refused)", NOPERM) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise GhostError(f"refusing the token file {path}: it must be a regular file of "
                             "yours with mode 0600 (delete it to make a new one)", NOPERM)
        token = os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if len(token) < 32:
        raise GhostError(f"the token file {path} is damaged (delete it to make a new one)",
                         NOPERM)
    return token


def allowed_hosts(host: str, port: int, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host header values this server answers to: the bound address, the loopback names when
    bound to loopback, and any --allow-host names, each with the port."""
    names = {host if ":" not in host else f"[{host}]"}
    if is_loopback(host):
        names.update(LOOPBACK_NAMES)
    names.update(extra)
    out = {f"{name.lower()}:{port}" for name in names if name}
    if port == 80:  # clients leave out the default port
        out.update(name.lower() for name in names if name)
    return frozenset(out)


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_token(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


class Guard:
    """ASGI middleware in front of everything: Host, Origin, then the token."""

    def __init__(self, app: ASGIApp, token: str, hosts: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts
        self.origins = frozenset(f"http://{h}" for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        problem = self.refusal(scope)
        if problem is None:
            await self.app(scope, receive, send)
            return
        status, code, message = problem
        if scope["type"] == "websocket":
            # Closing before accepting answers the handshake with HTTP 403; the close code
            # (4401/4403) tells a client that can see it why.
            await send({"type": "websocket.close", "code": 4000 + status, "reason": message})
            return
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        await error_response(status, code, message, headers)(scope, receive, send)

    def refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return 403, "bad_host", "this server does not answer to that Host header"
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return 403, "bad_origin", "requests from other sites are refused"
        path: str = scope["path"]
        if scope["type"] == "http" and (not path.startswith("/api/") or path.startswith(PUBLIC)):
            return None  # the dashboard's files; `/?token=` is checked by its route
        if path == "/api/openapi.json":
            return None  # the API's description is no secret
        auth = headers.get("authorization", "")
        if auth:
            scheme, _, given = auth.partition(" ")
            if scheme.lower() != "bearer" or not check_token(given.strip(), self.token):
                return 401, "unauthorized", "wrong token"
            return None
        cookie = _cookie(headers.get("cookie", ""))
        if cookie is None:
            return 401, "unauthorized", ("a token is needed: `Authorization: Bearer TOKEN` "
                                         "(the token is in <data dir>/web-token)")
        if not check_token(cookie, self.token):
            return 401, "unauthorized", "wrong token"
        # A browser attaches the cookie to anything; only pages of this server say so.
        unsafe = scope["type"] == "websocket" or scope.get("method") in UNSAFE_METHODS
        if unsafe and origin is None:
            return 403, "bad_origin", "a request authenticated by cookie needs an Origin"
        return None


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None
