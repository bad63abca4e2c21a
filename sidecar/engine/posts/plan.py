"""Scheduled posts, the pure part: which occasion a run is for, and what each message says.

Values in, values out: the runner (``post_runner``) asks Immich and the store, this module
decides. A post run makes ``PlannedMessage`` values; each becomes one Discord message (its
pictures one gallery) through the same outbox as the rules' deliveries.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from sidecar.config.checks import zone_of
from sidecar.config.cron import post_trigger
from sidecar.config.model import Settings
from sidecar.immich.models import Asset, Memory, Person
from sidecar.messages.posts import headline
from sidecar.messages.render import ENGLISH
from sidecar.wording import count

FALLBACK_YEARS = 30  # how far back the "on this day" fallback looks when Immich has no memory


@dataclass(frozen=True)
class PlannedMessage:
    """One message of a post run: what its headline says (``facts``, worded by each target in
    its language; ``text`` is the English, for logs), a link, and the pictures to show."""

    group: str  # unique within the run: a memory's year, a person's id, "digest"
    text: str
    link: str | None
    assets: tuple[Asset, ...]
    facts: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


def _message(
    group: str, facts: dict[str, Any], link: str | None, assets: tuple[Asset, ...]
) -> PlannedMessage:
    return PlannedMessage(group, headline(facts, ENGLISH), link, assets, facts)


@dataclass(frozen=True)
class Plan:
    messages: tuple[PlannedMessage, ...]
    note: str  # for the log: what the run found ("2 memories", "fallback: ...")


def occasion_of(fire_time: datetime, zone: ZoneInfo) -> str:
    """The occasion a run at ``fire_time`` is for: the local date (a post runs once a day at
    most, whatever its cron says)."""
    return fire_time.astimezone(zone).date().isoformat()


def last_fire(trigger: CronTrigger, now: datetime, zone: ZoneInfo) -> datetime | None:
    """The schedule's last fire time at or before ``now`` on the same local day, if any."""
    local = now.astimezone(zone)
    midnight = datetime(local.year, local.month, local.day, tzinfo=zone)
    found: datetime | None = None
    previous: datetime | None = None
    probe = midnight - timedelta(microseconds=1)
    while True:
        fire = trigger.get_next_fire_time(previous, probe)
        if fire is None or fire > now:
            return found
        found = previous = fire
        probe = fire + timedelta(microseconds=1)


def next_run_lines(settings: Settings, now: datetime) -> list[str]:
    """``check-config`` lines: each post and when it runs next, in the config's time zone."""
    zone = zone_of(settings.timezone) or ZoneInfo("UTC")
    found = []
    for post in settings.posts:
        when = post_trigger(post.cron, zone).get_next_fire_time(None, now)
        found.append(
            f'post {post.name} ({post.kind}, "{post.cron}"): '
            + (
                f"next run {when.astimezone(zone):%a %Y-%m-%d %H:%M} {settings.timezone}"
                if when is not None
                else "never runs"
            )
        )
    return found


def _pictures(assets: Iterable[Asset], limit: int) -> tuple[Asset, ...]:
    """Photos before videos (a video's still says less), in the order given, at most
    ``limit``."""
    listed = list(assets)
    ordered = [a for a in listed if a.type == "IMAGE"] + [a for a in listed if a.type != "IMAGE"]
    return tuple(ordered[:limit])


def _shows(asset: Asset, people: Collection[str] | None) -> bool:
    return people is None or bool(asset.person_ids & set(people))


def memory_link(external_url: str, memory_id: str) -> str:
    return f"{external_url.rstrip('/')}/memory?id={memory_id}"


@dataclass(frozen=True)
class _Year:
    """One past year of today's memories: what it shows, and where it opens in Immich."""

    year: int
    shown: tuple[Asset, ...]
    link: str


def _memory_messages(
    years: Sequence[_Year],
    today: date,
    *,
    max_pictures: int,
    max_per_day: int,
    one_message_per_year: bool,
) -> tuple[PlannedMessage, ...]:
    """The years (most recent first, at most ``max_per_day``) as one message each, or all in
    one message whose pictures are spread over the years."""
    kept = list(years)[:max_per_day]
    if one_message_per_year or len(kept) <= 1:
        return tuple(
            _message(
                str(y.year),
                {
                    "message": "memory_year",
                    "year": y.year,
                    "years_ago": today.year - y.year,
                    "count": len(y.shown),
                    "date": today.isoformat(),
                    **_taken(y.shown),
                },
                y.link,
                _pictures(y.shown, max_pictures),
            )
            for y in kept
        )
    facts = {
        "message": "memory_years",
        "year": kept[0].year,
        "years_ago": today.year - kept[0].year,
        "years": [[y.year, today.year - y.year] for y in kept],
        "count": sum(len(y.shown) for y in kept),
        "date": today.isoformat(),
    }
    # Immich's memory viewer steps on to the other years from the first one's link.
    pictures = _spread([_pictures(y.shown, max_pictures) for y in kept], max_pictures)
    return (_message("years", facts, kept[0].link, pictures),)


def _taken(shown: Sequence[Asset]) -> dict[str, str]:
    """When the year's first picture was taken (the post says the day under its headline)."""
    taken = next((a.taken_at for a in _pictures(shown, 1) if a.taken_at is not None), None)
    return {} if taken is None else {"taken": taken.isoformat()}


def _spread(per_year: Sequence[Sequence[Asset]], limit: int) -> tuple[Asset, ...]:
    """Up to ``limit`` pictures taken in turn from each year, so that every year shows."""
    picked: list[Asset] = []
    for round_ in range(max((len(p) for p in per_year), default=0)):
        picked += [p[round_] for p in per_year if round_ < len(p)]
    return tuple(picked[:limit])


def plan_memories(
    memories: Sequence[Memory],
    today: date,
    external_url: str,
    *,
    max_pictures: int,
    max_per_day: int,
    people: Collection[str] | None = None,
    one_message_per_year: bool = False,
) -> Plan:
    """Immich's memories for today, most recent year first: one message for all the years, or
    one per year. ``people``: person ids; only memories (and pictures) showing any of them."""
    years = []
    for memory in sorted(memories, key=lambda m: m.year, reverse=True):
        if memory.year >= today.year:
            continue
        shown = tuple(a for a in memory.assets if _shows(a, people))
        if shown:
            years.append(_Year(memory.year, shown, memory_link(external_url, memory.id)))
    messages = _memory_messages(
        years,
        today,
        max_pictures=max_pictures,
        max_per_day=max_per_day,
        one_message_per_year=one_message_per_year,
    )
    kept = min(len(years), max_per_day)
    return Plan(messages, f"{count(kept, 'memory', 'memories')} from Immich")


def fallback_windows(
    today: date,
    zone: ZoneInfo,
    years: int = FALLBACK_YEARS,
) -> list[tuple[int, datetime, datetime]]:
    """(year, start, end) of this month-day in each past year, local time; 29 February is
    looked for on the 28th in other years."""
    windows = []
    for year in range(today.year - 1, today.year - 1 - years, -1):
        try:
            day = today.replace(year=year)
        except ValueError:
            day = date(year, 2, 28)
        start = datetime(day.year, day.month, day.day, tzinfo=zone)
        windows.append((year, start, start + timedelta(days=1) - timedelta(milliseconds=1)))
    return windows


def plan_fallback(
    found: Mapping[int, Sequence[Asset]],
    today: date,
    external_url: str,
    *,
    max_pictures: int,
    max_per_day: int,
    people: Collection[str] | None = None,
    one_message_per_year: bool = False,
) -> Plan:
    """The same messages as ``plan_memories`` from photos found taken on this month-day."""
    years = []
    for year in sorted(found, reverse=True):
        shown = tuple(_pictures((a for a in found[year] if _shows(a, people)), len(found[year])))
        if shown:
            years.append(_Year(year, shown, f"{external_url.rstrip('/')}/photos/{shown[0].id}"))
    messages = _memory_messages(
        years,
        today,
        max_pictures=max_pictures,
        max_per_day=max_per_day,
        one_message_per_year=one_message_per_year,
    )
    kept = min(len(years), max_per_day)
    return Plan(
        messages,
        f"no memory in Immich for today; fallback search found {count(kept, 'year')} with photos",
    )


def is_birthday(born: date, today: date) -> bool:
    """29 February birthdays are kept on the 28th in other years."""
    if (born.month, born.day) == (today.month, today.day):
        return True
    leap = (today.year % 4 == 0 and today.year % 100 != 0) or today.year % 400 == 0
    return (born.month, born.day) == (2, 29) and not leap and (today.month, today.day) == (2, 28)


def birthdays_today(
    people: Iterable[Person], today: date, only: Collection[str] | None = None
) -> list[Person]:
    """Named people born on this month-day (``only``: person ids), by name."""
    return sorted(
        (
            p
            for p in people
            if p.birth_date is not None
            and p.name.strip()
            and p.birth_date.year < today.year
            and is_birthday(p.birth_date, today)
            and (only is None or p.id in only)
        ),
        key=lambda p: p.name.casefold(),
    )


def pick_spread(
    candidates: Sequence[Asset], limit: int, avoid: Collection[str] = (), seed: str = ""
) -> tuple[Asset, ...]:
    """Up to ``limit`` photos from as many different years as possible (most recent years
    first), never one in ``avoid`` unless there are too few others. ``seed`` makes the pick
    repeatable for one occasion."""
    rng = random.Random(seed)
    fresh = [a for a in candidates if a.id not in avoid]
    pool = fresh if len(fresh) >= limit else fresh + [a for a in candidates if a.id in avoid]
    by_year: dict[int, list[Asset]] = {}
    for asset in pool:
        by_year.setdefault(asset.taken_at.year if asset.taken_at else 0, []).append(asset)
    for assets in by_year.values():
        rng.shuffle(assets)
    picked: list[Asset] = []
    years = sorted(by_year, reverse=True)
    while len(picked) < limit and any(by_year.values()):
        for year in years:
            if by_year[year] and len(picked) < limit:
                picked.append(by_year[year].pop())
    return tuple(picked)


def birthday_facts(person: Person, today: date) -> dict[str, Any]:
    assert person.birth_date is not None
    return {
        "message": "birthday",
        "person": person.name,
        "age": today.year - person.birth_date.year,
        "date": today.isoformat(),
    }


def plan_birthdays(
    people: Sequence[Person],
    today: date,
    photos: Mapping[str, Sequence[Asset]],
    external_url: str,
) -> Plan:
    """One message per person whose birthday is today, with the photos picked for them."""
    messages = tuple(
        _message(
            person.id,
            birthday_facts(person, today),
            f"{external_url.rstrip('/')}/people/{person.id}",
            tuple(photos.get(person.id, ())),
        )
        for person in people
        if photos.get(person.id)
    )
    return Plan(messages, f"{count(len(messages), 'birthday')} today")


def period_of(start: datetime, end: datetime) -> str:
    """The digest's period: day, week, month, or since (its start)."""
    days = (end - start).total_seconds() / 86400
    if days <= 1.5:
        return "day"
    if days <= 8:
        return "week"
    return "month" if days <= 32 else "since"


def plan_digest(
    matches: Mapping[str, Sequence[Asset]],
    start: datetime,
    end: datetime,
    external_url: str,
    *,
    max_pictures: int,
) -> Plan:
    """ "This week: 42 new photos — Alice 30, Bob 12": what the rules matched in the period,
    each asset once, the people by how often they appear, and the newest few as previews."""
    assets: dict[str, Asset] = {}
    for found in matches.values():
        for asset in found:
            assets.setdefault(asset.id, asset)
    if not assets:
        return Plan((), "nothing matched in the period")
    tally: dict[str, int] = {}
    for asset in assets.values():
        for name in {p.name for p in asset.people if p.name.strip()}:
            tally[name] = tally.get(name, 0) + 1
    ranked = sorted(tally.items(), key=lambda item: (-item[1], item[0].casefold()))
    facts = {
        "message": "digest",
        "period": period_of(start, end),
        "since": start.date().isoformat(),
        "ranking": [[name, n] for name, n in ranked],
        "count": len(assets),
        "date": end.date().isoformat(),
    }
    newest = sorted(assets.values(), key=lambda a: a.created_at, reverse=True)
    return Plan(
        (
            _message(
                "digest",
                facts,
                f"{external_url.rstrip('/')}/photos",
                _pictures(newest, max_pictures),
            ),
        ),
        f"{count(len(assets), 'match', 'matches')} in the period",
    )
