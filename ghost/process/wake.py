"""Waking on the event store's next commit without watchfiles (kept off the `stop` path).

Every commit rewrites one byte of the store's wake file (events.store.Store._wake); an inotify
watch on it makes a file descriptor that `poll` reports readable after the next commit, so a
command can wait for a record together with pidfds, woken by either, with no polling loop.
"""

from __future__ import annotations

import os

IN_MODIFY = 0x2
IN_DONT_FOLLOW = 0x02000000  # never through a symlink planted in the data dir
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000


def watch(path: str) -> int | None:
    """An inotify fd that turns readable when `path` is written; None if it cannot be made."""
    import ctypes  # only here: about 3 ms, paid by a `stop` whose end is not yet recorded

    libc = ctypes.CDLL(None, use_errno=True)
    fd = int(libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC))
    if fd < 0:
        return None
    if int(libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY | IN_DONT_FOLLOW)) < 0:
        os.close(fd)
        return None  # e.g. the wake file does not exist (nothing was ever committed)
    return fd


def drain(fd: int) -> None:
    """Consume the pending notifications so the next poll waits for a new commit."""
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
