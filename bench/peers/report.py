"""Figures to Markdown: medians with their range, paired ratios, tables."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def num(x: float | None) -> str:
    """About three significant digits, as a reader compares them."""
    if x is None:
        return "—"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


def pct(xs: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by nearest rank: an observed value, never an interpolation."""
    if not xs:
        return None
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def spread(xs: Sequence[float]) -> str:
    """`median (min–max)`, or a dash when there are no samples."""
    if not xs:
        return "—"
    return f"{num(median(xs))} ({num(min(xs))}–{num(max(xs))})"


def paired_ratio(a: Sequence[float | None], b: Sequence[float | None]) -> float | None:
    """Median over rounds of a_i / b_i: noise that hits one round hits both tools in it."""
    pairs = [x / y for x, y in zip(a, b, strict=False) if x is not None and y]
    return statistics.median(pairs) if pairs else None


def ratio(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def section(title: str, note: str, body: str) -> str:
    return f"### {title}\n\n{note}\n\n{body}\n" if note else f"### {title}\n\n{body}\n"
