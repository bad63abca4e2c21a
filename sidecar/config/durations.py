"""Durations as written in the config and on the command line: 30s, 2m, 48h, 1h30m, 1d.

Every duration has a bound (the schema's ``maxDuration`` for each key, ``MAX_DURATION`` for any
text at all), so no value reaches date arithmetic that would overflow it.
"""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
# Past any sane setting, and far inside what dates and timers can hold (year 9999, 2**31 days).
MAX_DURATION = "3650d"
_LIMIT = 3650 * 86400  # MAX_DURATION in seconds
_MAX_DIGITS = 12  # per unit: a longer number is past MAX_DURATION whatever it says


def duration_seconds(text: str) -> int:
    """Whole seconds in a duration like ``1h30m``; ValueError when the text is not one, or is
    longer than ``MAX_DURATION``."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration like 30s, 2m or 48h, got {text[:40]!r}")
    parts = [part.lstrip("0") or "0" for part in match.groups() if part is not None]
    if any(len(part) > _MAX_DIGITS for part in parts):
        raise ValueError(f"{text[:40]} is longer than the longest duration, {MAX_DURATION}")
    seconds = sum(
        int(part) * size for part, (_, size) in zip(match.groups(), _UNITS, strict=True) if part
    )
    if seconds > _LIMIT:
        raise ValueError(f"{text[:40]} is longer than the longest duration, {MAX_DURATION}")
    return seconds


def is_duration(text: str) -> bool:
    """Whether ``text`` is written as a duration (however long)."""
    return _DURATION.match(text.strip()) is not None


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``1h30m``; ValueError when the text is not one."""
    return float(duration_seconds(text))


def within(text: str, maximum: str) -> bool:
    """Whether the duration ``text`` is at most ``maximum`` (both valid durations)."""
    try:
        return duration_seconds(text) <= duration_seconds(maximum)
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
