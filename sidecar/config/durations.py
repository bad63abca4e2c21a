"""Durations as written in the config and on the command line: 30s, 2m, 48h, 1h30m, 1d.

Every duration key has a bound (the schema's ``maxDuration``; ``dry-run --since`` its own), so
no value reaches date arithmetic that would overflow it. Reading a duration never fails for its
length: one past ``MAX_DURATION`` reads as infinitely long, which every bound refuses.
"""

from __future__ import annotations

import math
import re

_DURATION = re.compile(r"^(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# Past any sane setting, and far inside what dates and timers can hold (year 9999, 2**31 days).
MAX_DURATION = "3650d"
_LIMIT = 3650 * 86400  # MAX_DURATION in seconds
_MAX_DIGITS = 12  # per unit: a longer number is past MAX_DURATION whatever it says


def is_duration(text: str) -> bool:
    """Whether ``text`` is written as a duration (however long)."""
    return _DURATION.match(text.strip()) is not None


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``1h30m`` (``math.inf`` past ``MAX_DURATION``); ValueError
    when the text is not a duration."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration like 30s, 2m or 48h, got {text[:40]!r}")
    parts = [
        (part.lstrip("0") or "0", size)
        for part, (_, size) in zip(match.groups(), _UNITS, strict=True)
        if part
    ]
    if any(len(digits) > _MAX_DIGITS for digits, _size in parts):
        return math.inf
    seconds = sum(int(digits) * size for digits, size in parts)
    return math.inf if seconds > _LIMIT else float(seconds)


def within(text: str, maximum: str) -> bool:
    """Whether the duration ``text`` is at most ``maximum`` (False when it is no duration)."""
    try:
        return parse_duration(text) <= parse_duration(maximum)
    except ValueError:
        return False


def format_duration(seconds: float) -> str:
    """The shortest duration text for whole seconds, e.g. 5400 -> ``1h30m``."""
    remaining = round(seconds)
    if remaining <= 0:
        return "0s"
    parts = []
    for unit, size in _UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
