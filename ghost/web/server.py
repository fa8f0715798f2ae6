"""Running the app under uvicorn on a socket bound here (so `--port 0` prints the real port)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys

from ghost.errors import USAGE, GhostError

log = logging.getLogger("ghost.web")
GRACE = 1  # seconds open streams get on shutdown (an SSE client would hold it forever)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(False)
    except OSError as exc:
        sock.close()
        raise GhostError(f"cannot listen on {host}:{port}: {exc.strerror}", USAGE) from None
    return sock


def run(host: str, port: int, extra_hosts: tuple[str, ...], renew: bool) -> None:
    import uvicorn

    from ghost import datadir
    from ghost.web.app import create_app
    from ghost.web.errors import MAX_BODY
    from ghost.web.security import allowed_hosts, is_loopback, load_token, token_path

    base = datadir.prepare(create=True)
    assert base is not None
    token = load_token(base, renew)
    sock = bind(host, port)
    port = sock.getsockname()[1]
    shown = host if ":" not in host else f"[{host}]"
    app = create_app(token, allowed_hosts(host, port, extra_hosts))
    logging.basicConfig(level=logging.INFO, format="ghost serve: %(message)s")
    out = sys.stdout
    out.write(f"ghost serve: http://{shown}:{port}/?token={token}\n"
              "Open that URL once in a browser to sign in. API clients: "
              f"`Authorization: Bearer $(cat {token_path(base)})`\n")
    if not is_loopback(host):
        out.write(f"Warning: listening on {shown}:{port} over plain HTTP: anyone who can reach "
                  "it and has the token can run any command as you.\n")
    out.flush()
    config = uvicorn.Config(app, log_level="warning", ws_max_size=MAX_BODY + 1024,
                            proxy_headers=False, server_header=False, date_header=False,
                            timeout_graceful_shutdown=GRACE, access_log=False)
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again with the
    # handlers it found: these, which end the process as the CLI does (0, or 130 for Ctrl+C).
    signal.signal(signal.SIGTERM, lambda *_: _leave(0))
    signal.signal(signal.SIGINT, lambda *_: _leave(130))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    _leave(0 if server.started else 1)


def _leave(status: int) -> None:
    """Exit now. A worker thread may still block in an action (a stop waiting out its
    timeout): every event is already durable, so there is nothing to wait for."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
