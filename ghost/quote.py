"""Quoting a user's value inside an error line, safely.

The value is shown as repr shows it (control characters as `\\n`, `\\x1b`, ...), an undecodable
argv byte as `\\xff` rather than a surrogate, and clipped: an error line stays one short line
that no terminal acts on, however hostile the value.
"""

from __future__ import annotations


def quoted(value: object, limit: int = 60) -> str:
    text = str(value)
    try:
        text.encode("utf-8")
        shown = repr(text)
    except UnicodeEncodeError:  # surrogate escapes from a non-UTF-8 argv: show the bytes
        shown = repr(text.encode("utf-8", "surrogateescape"))[1:]
    return shown if len(shown) <= limit else shown[:limit] + "...'"
