"""Parsing the times users type: ISO 8601, a date, `2h`, `30m ago`, `yesterday`, `now`."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta

from ghost.errors import USAGE, GhostError

_UNITS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600,
          "hour": 3600, "d": 86400, "day": 86400, "w": 604800, "week": 604800}
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+?)s?(?:\s+ago)?\s*$")


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
        return int(midnight.timestamp() * 1e9)
    match = _RELATIVE.match(lowered)
    if match and match.group(2) in _UNITS:
        return now_ns - int(float(match.group(1)) * _UNITS[match.group(2)] * 1e9)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise GhostError(f"cannot understand time {text!r}: use ISO 8601 (2026-11-21T03:00), "
                         "a date, or a relative time like 2h, 30m ago, yesterday", USAGE) from None
    return int(value.timestamp() * 1e9)
