"""A number with its noun, for log lines and command output: "1 rule", "2 rules"."""

from __future__ import annotations


def count(number: int, noun: str, plural: str | None = None) -> str:
    """``count(1, "rule")`` is "1 rule", ``count(2, "match", "matches")`` is "2 matches"."""
    return f"{number} {noun if number == 1 else (plural or noun + 's')}"
