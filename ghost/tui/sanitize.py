"""Task output made safe to draw: colours kept, every other terminal escape removed.

A task's output is untrusted: it may hold cursor moves, screen clears, title changes (OSC),
hyperlinks, device queries, or bare control bytes. Only SGR sequences (`ESC [ ... m`, colours
and styles) are kept, and Rich parses them into styles; everything else is dropped or shown as
`^X`, so nothing a task prints can act on the real terminal.
"""

from __future__ import annotations

import re

from rich.text import Text

# Any escape sequence: CSI, OSC / DCS / SOS / PM / APC strings (to BEL or ST), or a 2-byte ESC x.
_ESCAPE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC, DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]"  # two-byte (and nF) escapes
    r"|\x1b"  # a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _keep_sgr(match: re.Match[str]) -> str:
    seq = match.group()
    return seq if _SGR.fullmatch(seq) else ""


def _caret(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"^{chr(code + 64)}" if code < 32 else ("^?" if code == 127 else f"\\x{code:02x}")


def clean(line: str) -> str:
    """`line` with only SGR escapes left; a carriage return keeps what was drawn last (a
    progress bar shows its final state) and other control characters become visible."""
    line = line.rstrip("\r\n")
    if "\r" in line:
        line = line.rsplit("\r", 1)[1]
    line = _ESCAPE.sub(_keep_sgr, line)
    # SGR sequences are the only ESCs left; hide them while showing the other control bytes.
    parts = _SGR.split(line)
    seqs = _SGR.findall(line)
    out = [_CONTROL.sub(_caret, parts[0])]
    for seq, part in zip(seqs, parts[1:], strict=True):
        out.append(seq)
        out.append(_CONTROL.sub(_caret, part))
    return "".join(out)


def render(line: bytes, colour: bool = True) -> Text:
    """One line of output (bytes, any encoding) as a Rich Text that is safe to draw."""
    text = clean(line.decode("utf-8", "replace"))
    rich = Text.from_ansi(text) if colour else Text(_SGR.sub("", text))
    rich.expand_tabs(8)
    # Belt and braces: Rich's parser drops what it does not understand, but never let an ESC
    # or other control byte through, whatever it did.
    if _CONTROL.search(rich.plain) or "\x1b" in rich.plain:
        return Text(_CONTROL.sub(_caret, rich.plain.replace("\x1b", "^[")))
    return rich
