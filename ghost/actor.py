"""Who caused an event: interface, user, process and terminal."""

from __future__ import annotations

import os
from contextvars import ContextVar
from typing import Any

INTERFACES = ("cli", "mcp", "tui", "web", "monitor", "reconcile")

# The peer of a network surface (`ghost serve`: "127.0.0.1:53122"), set around each action it
# calls, so every event that action records says where the request came from.
REMOTE: ContextVar[str | None] = ContextVar("ghost_remote", default=None)


def actor(interface: str) -> dict[str, Any]:
    uid = os.getuid()
    try:
        import pwd

        user = pwd.getpwuid(uid).pw_name
    except (KeyError, ImportError):
        user = str(uid)
    tty = ""
    for fd in (0, 1, 2):
        try:
            tty = os.ttyname(fd)
            break
        except OSError:
            continue
    who = {"via": interface, "uid": uid, "user": user, "pid": os.getpid(), "tty": tty}
    remote = REMOTE.get()
    if remote is not None:
        who["remote"] = remote
    return who
