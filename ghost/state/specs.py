"""Launch specs: what a restart needs that the event log must never hold.

`<data dir>/specs/<task id>.json`, 0600, in a 0700 directory, never through a symlink: the
argv, the working directory, the environment overrides *with their values*, and the
supervision options. The event log only ever has the override names (`env_keys`), so this file
is never exported, shown or sent over MCP; `cleanup` deletes it with the task's log.

Written by `ghost run` before the monitor starts (a run that then fails leaves a file that the
next cleanup of that task removes); read by `ghost restart` and by the monitor's restart loop.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from typing import Any

SPECS = "specs"


def specs_dir(base: str) -> str:
    return os.path.join(base, SPECS)


def spec_path(base: str, task_id: str) -> str:
    return os.path.join(specs_dir(base), f"{task_id}.json")


def write(base: str, task_id: str, spec: dict[str, Any]) -> None:
    """Create the task's spec file (0600, exclusive, no symlinks followed)."""
    from ghost.datadir import checked_dir

    checked_dir(specs_dir(base), create=True)
    # ensure_ascii keeps arguments that are not valid UTF-8 (surrogate escapes) exact.
    data = json.dumps(spec, separators=(",", ":")).encode()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    path = spec_path(base, task_id)
    try:
        fd = os.open(path, flags, 0o600)
        try:
            view = memoryview(data)
            while view:  # a short write is not an error: write the rest
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # no half-written spec: nothing started, nothing to restart
        raise _spec_error(path, exc) from exc


def _spec_error(path: str, exc: OSError) -> Exception:
    from ghost.errors import IO, GhostError

    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    reason = os.strerror(exc.errno or errno.EIO)
    why = f"the disk is full ({reason})" if full else reason
    return GhostError(f"cannot write the launch spec {path}: {why}; nothing was started",
                      IO if full or exc.errno == errno.EIO else 1)


def read(base: str, task_id: str) -> dict[str, Any] | None:
    """The task's spec, or None when it has none (started by an older ghost, or cleaned)."""
    try:
        fd = os.open(spec_path(base, task_id), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    try:
        spec = json.loads(b"".join(chunks))
    except ValueError:
        return None  # torn by a crash before it was complete: as if there were none
    return spec if isinstance(spec, dict) else None


def delete(base: str, task_id: str) -> None:
    try:
        os.unlink(spec_path(base, task_id))
    except FileNotFoundError:
        pass
