"""`ghost serve`: the click command. Imports only click until the checks pass, so a missing
extra or a refused --host costs one `Error:` line and nothing else."""

from __future__ import annotations

import click

from ghost.errors import USAGE, GhostError

EXTRA_MISSING = ("ghost serve needs the web extra (starlette, uvicorn): "
                 "pip install 'ghost-tasks[web]'")
DEFAULT_PORT = 7766

@click.command(name="serve", context_settings={"help_option_names": ["-h", "--help"],
                                               "max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback needs --allow-remote.")
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=DEFAULT_PORT,
              show_default=True, help="Port (0: any free port).")
@click.option("--allow-remote", is_flag=True,
              help="Allow a non-loopback --host: anyone who can reach it and has the token "
                   "can run commands as you, over plain HTTP.")
@click.option("--allow-host", "allow_host", multiple=True, metavar="NAME",
              help="Another Host header to accept (a DNS name or a proxy's), repeatable.")
@click.option("--new-token", is_flag=True, help="Replace the token (signs every client out).")
def serve_command(host: str, port: int, allow_remote: bool, allow_host: tuple[str, ...],
                  new_token: bool) -> None:
    """Serve the HTTP API and the web dashboard (127.0.0.1 only, unless told otherwise).

    Prints a URL with a sign-in token: open it once in a browser. API clients send
    `Authorization: Bearer TOKEN`; the token is kept in <data dir>/web-token (0600). Every
    action is recorded with via=web and the client's address (see `ghost history`).
    Protocol and security: docs/http.md.

    To keep it running as a systemd user service, ~/.config/systemd/user/ghost-serve.service:

    \b
        [Unit]
        Description=ghost web dashboard and HTTP API
        [Service]
        ExecStart=%h/.local/bin/ghost serve --port 7766
        Restart=on-failure
        # tasks started from the dashboard must outlive a restart of the server
        KillMode=process
        [Install]
        WantedBy=default.target

    \b
    then: systemctl --user daemon-reload && systemctl --user enable --now ghost-serve
    and, to keep it running after you log out: loginctl enable-linger $USER
    """
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("starlette", "uvicorn")):
        raise GhostError(EXTRA_MISSING)
    from ghost.web.security import is_loopback

    if not is_loopback(host) and not allow_remote:
        raise GhostError(f"refusing --host {host}: it is not a loopback address, and the API "
                         "runs any command as you; add --allow-remote if you really mean to "
                         "expose it (put it behind TLS)", USAGE)
    from ghost.web.server import run

    run(host, port, allow_host, new_token)
