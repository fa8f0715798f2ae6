"""The one error type of the event store."""

from __future__ import annotations


class StoreError(Exception):
    """A store operation failed.

    `kind` is one of readonly, disk_full, map_full, unsafe, invalid, io.
    """

    def __init__(self, message: str, kind: str = "io") -> None:
        super().__init__(message)
        self.kind = kind
