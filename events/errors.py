"""The one error type of the event store."""

from __future__ import annotations

import errno


class StoreError(Exception):
    """A store operation failed.

    `kind` is one of readonly, disk_full (ENOSPC, EDQUOT), io_error (EIO), map_full, unsafe,
    invalid, damaged (the file or a value in it is not what ghost wrote), io (anything else).
    """

    def __init__(self, message: str, kind: str = "io") -> None:
        super().__init__(message)
        self.kind = kind


def os_error_kind(code: int | None) -> str:
    """The StoreError kind of an errno: a full disk and a failing disk are told apart."""
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "disk_full"
    if code == errno.EIO:
        return "io_error"
    return "io"
