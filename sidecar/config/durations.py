"""Durations as written in the config and on the command line: 30s, 2m, 48h, 1h30m, 1d."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def parse_duration(text: str) -> float:
    """Seconds in a duration like ``1h30m``; ValueError when the text is not one."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration like 30s, 2m or 48h, got {text!r}")
    return float(
        sum(
            int(part) * seconds
            for part, (_, seconds) in zip(match.groups(), _UNITS, strict=True)
            if part
        )
    )


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
