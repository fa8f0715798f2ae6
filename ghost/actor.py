"""Who caused an event: interface, user, process and terminal."""

from __future__ import annotations

import os
from typing import Any

INTERFACES = ("cli", "mcp", "tui", "web", "monitor", "reconcile")


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
    return {"via": interface, "uid": uid, "user": user, "pid": os.getpid(), "tty": tty}
