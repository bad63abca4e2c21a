"""Post schedules: five-field crons (and cron's ``@daily`` family) read by APScheduler as cron
reads them, and every mistake said with the field it is in.

APScheduler 3 reads a crontab as exactly five fields and knows no ``@`` aliases; its weekday
numbers start at Monday (cron's at Sunday), so numbers are refused there and the aliases are
written with weekday names: ``@weekly`` is cron's Sunday midnight, ``0 0 * * sun``. And it adds
whole days in absolute time, so a schedule at midnight skips the day after clocks go forward
(APScheduler issues 529 and 606): ``WallClockCron`` reads the fields on the wall clock instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# Vixie cron's aliases, as crontab(5) defines them; @reboot has no time to be read as.
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * sun",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
EXAMPLE = '"0 9 * * *" (09:00 daily) or @daily'


@dataclass(frozen=True)
class _Field:
    key: str  # APScheduler's name
    label: str  # the user's
    plural: str
    low: int
    high: int
    names: str = ""  # what may be written instead of numbers


_FIELDS = (
    _Field("minute", "minute", "minutes", 0, 59),
    _Field("hour", "hour", "hours", 0, 23),
    _Field("day", "day of the month", "days of the month", 1, 31, "last"),
    _Field("month", "month", "months", 1, 12, "jan-dec"),
    _Field("day_of_week", "weekday", "weekdays", 0, 6, "mon-sun"),
)


def five_fields(cron: str) -> list[str]:
    """The five fields of a cron or of its alias; ValueError says what is wrong."""
    text = " ".join(cron.split())
    if text.startswith("@"):
        alias = text.lower()
        if alias == "@reboot":
            raise ValueError("@reboot has no time of day for a post to run at")
        if alias not in ALIASES:
            known = ", ".join(a for a in ALIASES if a not in ("@annually", "@midnight"))
            raise ValueError(f"{text[:20]!r} is not a cron alias (use {known})")
        text = ALIASES[alias]
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            f"a cron has five fields (minute hour day month weekday), this has {len(fields)}"
        )
    return fields


_MAX_SKIPS = 1000  # wall-clock times the zone lacks or repeats, passed over in one search


class WallClockCron(CronTrigger):  # type: ignore[misc]
    """A cron read on the wall clock of its zone: the next time its fields name, found on a
    UTC twin of the same fields in local wall-clock time, then placed in the zone. A time the
    clocks skip is passed over (as APScheduler documents); a time they repeat fires once, the
    first time."""

    def __init__(self, zone: ZoneInfo, **fields: Any) -> None:
        super().__init__(timezone=zone, **fields)
        self._wall = CronTrigger(timezone=UTC, **fields)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        zone = self.timezone
        start = _wall(now, zone)
        if previous_fire_time is not None:  # as APScheduler: the run after the previous one
            start = min(start, _wall(previous_fire_time, zone) + timedelta(microseconds=1))
        for _ in range(_MAX_SKIPS):
            wall: datetime | None = self._wall.get_next_fire_time(None, start)
            if wall is None:
                return None
            local = wall.replace(tzinfo=None)
            placed = local.replace(tzinfo=zone)
            exists = placed.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == local
            if exists and (previous_fire_time is None or placed > previous_fire_time):
                return placed
            start = wall + timedelta(microseconds=1)
        return None


def _wall(moment: datetime, zone: ZoneInfo) -> datetime:
    """The zone's wall-clock time at ``moment``, written as if it were UTC."""
    return moment.astimezone(zone).replace(tzinfo=UTC, fold=0)


def post_trigger(cron: str, zone: ZoneInfo) -> CronTrigger:
    """APScheduler's own reading of a post's cron; ValueError names the field that is wrong."""
    fields = five_fields(cron)
    # APScheduler reads a weekday number as 0 = Monday, cron as 0 = Sunday: a number would
    # silently post on the wrong day, so only names are accepted there.
    if re.search(r"\d", fields[4]):
        raise ValueError(
            f"write the weekday ('{fields[4]}') with names like mon-fri or sun: "
            "cron and the scheduler disagree on what 0 means"
        )
    for spec, value in zip(_FIELDS, fields, strict=True):
        try:
            CronTrigger(timezone=zone, **{spec.key: value})
        except ValueError as err:
            raise ValueError(f"the {spec.label} field is '{value}': {_reason(spec, err)}") from None
    return WallClockCron(zone, **{s.key: v for s, v in zip(_FIELDS, fields, strict=True)})


def _reason(spec: _Field, err: ValueError) -> str:
    """APScheduler's complaint about one field, in the field's own terms."""
    text = str(err)
    written = f"{spec.low} to {spec.high}" + (f" or {spec.names}" if spec.names else "")
    if "higher than the maximum" in text or "lower than the minimum" in text:
        return f"{spec.plural} go from {spec.low} to {spec.high}"
    if text.startswith(("Unrecognized expression", "Invalid month name", "Invalid weekday name")):
        return (
            f"not a {spec.label}: write {written}, a range like 1-5, a list like 1,15 "
            "or a step like */2"
        )
    return text[:1].lower() + text[1:]
