"""Quiet hours (pure): whether a delivery for a target and rule must wait now, and until when.

A target or a rule may have a daily window; a delivery that becomes due inside either waits
until the window ends (the later end when both apply), then goes out with the others held
for the same rule as one summary.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sidecar.config.checks import zone_of
from sidecar.config.model import QuietHours, Settings

QuietUntil = Callable[[str, str, datetime], datetime | None]  # (target, rule, now) -> end


def window_end(hours: QuietHours, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When the quiet window that ``now`` is in ends, or None when ``now`` is not in it."""
    local = now.astimezone(zone)
    moment = local.time().replace(tzinfo=None)
    start, end = hours.start, hours.end
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if not inside:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, end.hour, end.minute, tzinfo=zone)


def never_quiet(_target: str, _rule: str, _now: datetime) -> datetime | None:
    return None


def quiet_policy(settings: Settings) -> QuietUntil:
    """(target, rule, now) -> when the quiet hours holding that delivery end (None: send)."""
    zone = zone_of(settings.timezone) or ZoneInfo("UTC")
    by_target = {name: t.quiet_hours for name, t in settings.targets.items() if t.quiet_hours}
    by_rule = {rule.name: rule.quiet_hours for rule in settings.rules if rule.quiet_hours}
    if not by_target and not by_rule:
        return never_quiet

    def until(target: str, rule: str, now: datetime) -> datetime | None:
        ends = [
            end
            for hours in (by_target.get(target), by_rule.get(rule))
            if hours is not None
            if (end := window_end(hours, now, zone)) is not None
        ]
        return max(ends) if ends else None

    return until
