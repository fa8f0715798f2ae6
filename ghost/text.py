"""Making text safe to show: valid UTF-8 always."""

from __future__ import annotations


def printable(text: str) -> str:
    """Undecodable bytes (kept as surrogate escapes, e.g. in a non-UTF-8 argv) shown as U+FFFD,
    so the output is always valid UTF-8; the task itself got the exact bytes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
