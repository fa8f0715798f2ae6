"""The `run` options that make ghost pump a task's stdio: --pty, --cols/--rows, --stdin,
--timestamps, --log-max/--log-keep. Checked here before anything starts; `complete` adds what
the monitor needs (ghost.process.plumbing) to its spec. Imported by `run` only when one of
these options is given: the plain `run` path stays as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from ghost import datadir
from ghost.errors import USAGE, GhostError
from ghost.process import inbox

MAX_SIZE = 65535
MAX_KEEP = 100
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"(\d+)([KMGT]?)(I?B)?", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`10M`, `1G`, `512K`, `4096` (bytes; K/M/G/T are powers of 1024)."""
    match = _SIZE.fullmatch(text.strip())
    if not match:
        raise GhostError(f"invalid --log-max {text!r}: expected a size like 10M or 1G", USAGE)
    size = int(match.group(1)) * UNITS[match.group(2).upper()]
    if not 1 <= size < 1 << 56:
        raise GhostError(f"invalid --log-max {text!r}: must be at least 1 byte", USAGE)
    return size


def check(io: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the monitor takes them; a usage error for a combination that means
    nothing."""
    pty, stdin = bool(io.get("pty")), bool(io.get("stdin"))
    if pty and stdin:
        raise GhostError("--pty already gives the task an input; drop --stdin", USAGE)
    cols, rows = io.get("cols"), io.get("rows")
    if not pty and (io.get("explicit_size")):
        raise GhostError("--cols and --rows need --pty", USAGE)
    for name, value in (("--cols", cols), ("--rows", rows)):
        if value is not None and not 1 <= int(value) <= MAX_SIZE:
            raise GhostError(f"invalid {name} {value}: must be 1 to {MAX_SIZE}", USAGE)
    log_max = io.get("log_max")
    size = parse_size(str(log_max)) if log_max not in (None, "") else 0
    keep = io.get("log_keep")
    if keep is not None and not size:
        raise GhostError("--log-keep needs --log-max", USAGE)
    keep = 3 if keep is None else int(keep)
    if not 0 <= keep <= MAX_KEEP:
        raise GhostError(f"invalid --log-keep {keep}: must be 0 to {MAX_KEEP}", USAGE)
    return {"pty": pty, "stdin": stdin, "timestamps": bool(io.get("timestamps")),
            "cols": int(cols or 80), "rows": int(rows or 24), "log_max": size, "log_keep": keep}


def complete(spec: dict[str, Any], io: Mapping[str, Any], base: str) -> None:
    """Add the pump's settings (and the fields `spawned` records) to the monitor's spec."""
    checked = check(io)
    kind = "pty" if checked["pty"] else "pipe" if checked["stdin"] else "none"
    if kind != "none":
        run_dir = os.path.join(base, inbox.SOCKET_DIR)
        datadir.checked_dir(run_dir, create=True)  # 0700, ours, not a symlink
        checked["inbox"] = inbox.socket_path(base, spec["task"])
    if kind == "pty" and "TERM" not in spec["env"]:
        spec["env"] = {**spec["env"], "TERM": "xterm-256color"}
    spec["io"] = checked
    fields: dict[str, Any] = {"input": kind, "indexed": True}
    if kind == "pty":
        fields.update(cols=checked["cols"], rows=checked["rows"])
    if checked["log_max"]:
        fields.update(log_max=checked["log_max"], log_keep=checked["log_keep"])
    spec["io_fields"] = fields

