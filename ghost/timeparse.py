"""Parsing the times users type: ISO 8601, a date, `2h`, `30m ago`, `yesterday`, `now`.

Every result is a time ghost can record: nanoseconds since the epoch that fit in 63 bits
(1970-01-01 to 2262-04-11). Anything else (year 1, a 400-digit `h`, `nan`) is a usage error,
never an overflow deep inside a query.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta

from ghost.errors import USAGE, GhostError
from ghost.quote import quoted as _shown

MAX_NS = (1 << 63) - 1
_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?(?:\s+ago)?\s*$")
_HINT = "use ISO 8601 (2026-11-21T03:00), a date, or a relative time like 2h, 30m ago, yesterday"


def _out_of_range(text: str) -> GhostError:
    return GhostError(f"time {_shown(text)} is out of range: ghost records times from "
                      "1970-01-01 to 2262-04-11", USAGE)


def parse_time(text: str, now_ns: int | None = None) -> int:
    """Nanoseconds since the epoch for `text`; local time when no zone is given."""
    now_ns = time.time_ns() if now_ns is None else now_ns
    lowered = text.strip().lower()
    if lowered == "now":
        return now_ns
    if lowered in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now_ns / 1e9).replace(hour=0, minute=0, second=0,
                                                                microsecond=0)
        if lowered == "yesterday":
            midnight -= timedelta(days=1)
        return _checked(text, midnight.timestamp() * 1e9)
    match = _RELATIVE.match(lowered)
    if match and match.group(2) in _UNITS:
        delta = float(match.group(1)) * _UNITS[match.group(2)] * 1e9  # inf for 400 digits
        if not math.isfinite(delta) or delta > now_ns:
            raise _out_of_range(text)
        return now_ns - int(delta)  # exact integer arithmetic on the current time
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise GhostError(f"cannot understand time {_shown(text)}: {_HINT}", USAGE) from None
    try:
        stamp = value.timestamp()  # local time for a naive value: mktime may refuse year 1
    except (OverflowError, ValueError, OSError):
        raise _out_of_range(text) from None
    return _checked(text, stamp * 1e9)


def _checked(text: str, ns: float) -> int:
    if not math.isfinite(ns) or not 0 <= ns <= MAX_NS:
        raise _out_of_range(text)
    return min(int(ns), MAX_NS)
