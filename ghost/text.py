"""Making text safe to show: valid UTF-8 always, and nothing a terminal would act on.

`printable` is for machine output (JSON): the text stays exact, only undecodable bytes change.
`escape` is for what a person reads (list, status, history, log headers, `Error:` lines): every
stored string may come from an untrusted command line, cwd or error text, so control characters
are shown as escapes instead of reaching the terminal as a screen clear, a window title or a
newline that splits a row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def printable(text: str) -> str:
    """Undecodable bytes (kept as surrogate escapes, e.g. in a non-UTF-8 argv) shown as U+FFFD,
    so the output is always valid UTF-8; the task itself got the exact bytes."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


_NAMED = {"\x1b": "\\e", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\a": "\\a", "\b": "\\b",
          "\f": "\\f", "\v": "\\v", "\0": "\\0"}
# C0 and C1 controls and DEL; bidi overrides/isolates and line/paragraph separators (they
# reorder or split what a person sees: "Trojan source"); surrogates (undecodable bytes kept by
# surrogateescape, or stray ones). Zero-width joiners and the like stay: emoji need them.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
                     "\ud800-\udfff]")


# the same, but for a newline (which separates the lines of an output)
_UNSAFE_IN_LINES = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f"
                              "\u2028-\u202e\u2066-\u2069\ud800-\udfff]").search


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x80:
        return f"\\x{code:02x}"
    if 0xD800 <= code <= 0xDFFF:  # bytes that were not UTF-8: U+FFFD, as in all output
        return "\ufffd"
    return f"\\u{code:04x}"


def escape(text: str) -> str:
    """`text` for a terminal: control characters as `\\e`, `\\n`, `\\t`, `\\xNN`, `\\uNNNN`;
    bytes that were not UTF-8 as U+FFFD (as `printable` and JSON show them).

    Backslashes are left alone, so ordinary commands render exactly as before; the escapes
    are for reading, not for feeding back to a shell (JSON output has the exact strings)."""
    if text.isprintable():  # the common case, in C: plain text needs no scan at all
        return text
    return _UNSAFE.sub(_escaped, text)


def escape_lines(text: str) -> str:
    """Every line of `text` escaped, the newlines between them kept (a safety net for output
    assembled from several strings; the strings themselves must be escaped first)."""
    if not _UNSAFE_IN_LINES(text):  # one scan in C of the whole text (`list`: 1 MB or more)
        return text
    return "\n".join(escape(line) for line in text.split("\n"))


# Words a shell reads back unchanged (shlex's own safe set); a space separates them.
_SHELL_UNSAFE = re.compile(r"[^\w@%+=:,./ -]", re.ASCII).search


def shell_line(argv: Sequence[str]) -> str:
    """The argv as a shell would read it (shlex.join), escaped for a terminal."""
    joined = " ".join(argv)
    if (argv and not _SHELL_UNSAFE(joined) and joined.count(" ") == len(argv) - 1
            and all(argv)):
        return joined  # nothing to quote: the common case, and 10x cheaper than shlex
    import shlex

    return escape(shlex.join(argv))
