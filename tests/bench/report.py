"""One measured figure per row, and the table ``python -m tests.bench`` prints."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One line of the table. ``passed`` is None where no target applies (information only)."""

    section: str  # the --only name that measures it
    what: str
    value: str
    target: str = ""
    passed: bool | None = None

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "-"
        return "PASS" if self.passed else "MISS"


def spread(samples: Sequence[float], unit: str = "s", digits: int = 3) -> str:
    """``median (max)`` of samples, e.g. ``0.812 s (max 1.904 s, n=6)``."""
    return (
        f"{statistics.median(samples):.{digits}f} {unit} "
        f"(max {max(samples):.{digits}f} {unit}, n={len(samples)})"
    )


def table(figures: Sequence[Figure]) -> str:
    headers = ("section", "measurement", "value", "target", "result")
    rows = [(f.section, f.what, f.value, f.target, f.verdict) for f in figures]
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    lines = [
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    return "\n".join(lines)
