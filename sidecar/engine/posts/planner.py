"""What a scheduled post would say now: the questions a run asks Immich (today's memories or,
failing those, photos of this day in past years; the people whose birthday it is and photos of
them; the matches a digest summarises from the state file), handed to ``posts.plan``, which
decides. Nothing is stored: the scheduler and the dry run both use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sidecar.config.checks import zone_of
from sidecar.config.model import PeopleAliases, Post, Settings
from sidecar.engine.posts.accounts import PostSource
from sidecar.engine.posts.plan import (
    Plan,
    birthdays_today,
    fallback_windows,
    pick_spread,
    plan_birthdays,
    plan_digest,
    plan_fallback,
    plan_memories,
)
from sidecar.engine.rules.matching import (
    NO_ALIASES,
    RuleResolutionError,
    is_person_id,
    resolve_people,
)
from sidecar.engine.store.database import Store
from sidecar.immich.models import Asset, Person

BIRTHDAY_CANDIDATES = 50  # random photos of a person to pick from
FALLBACK_PER_YEAR = 100  # photos looked at per past year in the "on this day" fallback


class PostPlanner:
    """Asks Immich what a post would say today; nothing is stored (dry-run and the runner)."""

    def __init__(
        self,
        client: PostSource,
        store: Store | None,
        external_url: str,
        aliases: PeopleAliases = NO_ALIASES,
    ) -> None:
        self._client = client
        self._store = store
        self._external_url = external_url
        self._aliases = aliases

    async def plan(
        self, post: Post, now: datetime, zone: ZoneInfo, since: datetime | None = None
    ) -> Plan:
        today = now.astimezone(zone).date()
        people = await self._people_ids(post)
        if post.kind == "memories":
            return await self._memories(post, today, zone, people)
        if post.kind == "birthdays":
            return await self._birthdays(post, today, people, now)
        return self._digest(post, since or now - timedelta(days=7), now)

    async def _people_ids(self, post: Post) -> frozenset[str] | None:
        """The people a post names: each name (or one of its aliases) as Immich has it."""
        if not post.people:
            return None
        found: dict[str, list[Person]] = {}
        problems: list[str] = []
        ids: set[str] = set()
        for position, name in enumerate(post.people):
            if name not in found and not is_person_id(name):
                answers: dict[str, Person] = {}
                for spelling in self._aliases.spellings(name):
                    for person in await self._client.search_person(spelling, with_hidden=True):
                        answers.setdefault(person.id, person)
                found[name] = list(answers.values())
            ids.update(
                resolve_people(
                    name,
                    lambda n: found.get(n, []),
                    f"posts {post.name}: people.any[{position}]",
                    problems,
                    self._aliases,
                )
            )
        if problems:
            raise RuleResolutionError(problems)
        return frozenset(ids)

    async def _memories(
        self, post: Post, today: date, zone: ZoneInfo, people: frozenset[str] | None
    ) -> Plan:
        memories = await self._client.memories_on(today)
        plan = plan_memories(
            memories,
            today,
            self._external_url,
            max_pictures=post.max_pictures,
            max_per_day=post.max_per_day,
            people=people,
            one_message_per_year=post.one_message_per_year,
        )
        if plan.messages:
            return plan
        # The nightly job covers each day once: photos uploaded after it ran, or a job that
        # never ran, leave today without a memory. Look for photos of this day ourselves.
        found: dict[int, list[Asset]] = {}
        for year, start, end in fallback_windows(today, zone):
            page = await self._client.search_metadata(
                taken_after=start,
                taken_before=end,
                size=FALLBACK_PER_YEAR,
                person_ids=[],
                with_people=True,
                with_exif=True,
            )
            if page.assets:
                found[year] = list(page.assets)
        fallback = plan_fallback(
            found,
            today,
            self._external_url,
            max_pictures=post.max_pictures,
            max_per_day=post.max_per_day,
            people=people,
            one_message_per_year=post.one_message_per_year,
        )
        if not memories:
            return fallback
        return Plan(
            fallback.messages, f"Immich's memories for today show nobody asked for; {fallback.note}"
        )

    async def _birthdays(
        self, post: Post, today: date, people: frozenset[str] | None, now: datetime
    ) -> Plan:
        everyone = await self._client.all_people()
        celebrated = birthdays_today(everyone, today, people)
        avoid = (
            self._store.posted_pictures(post.name, now - timedelta(days=400))
            if self._store is not None
            else set()
        )
        photos: dict[str, Sequence[Asset]] = {}
        for person in celebrated:
            candidates = await self._client.random_assets(
                person_ids=[person.id], size=BIRTHDAY_CANDIDATES
            )
            previous = {
                entry.split("/", 1)[1] for entry in avoid if entry.startswith(person.id + "/")
            }
            photos[person.id] = pick_spread(
                candidates, post.max_pictures, previous, seed=f"{person.id}/{today.isoformat()}"
            )
        return plan_birthdays(celebrated, today, photos, self._external_url)

    def _digest(self, post: Post, since: datetime, now: datetime) -> Plan:
        if self._store is None:
            return Plan((), "a digest needs the state file")
        matches = self._store.matches_between(post.rules, since, now)
        return plan_digest(matches, since, now, self._external_url, max_pictures=post.max_pictures)


COMMAND_POST = Post(  # the command shows one embed per year
    name="command",
    kind="memories",
    cron="* * * * *",
    targets=(),
    max_pictures=4,
    max_per_day=10,
    one_message_per_year=True,
)


async def memories_today(
    client: PostSource, store: Store | None, settings: Settings, now: datetime
) -> Plan:
    """What ``/immich memories`` shows: today's memories (or the fallback), as a post would."""
    zone = zone_of(settings.timezone) or ZoneInfo("UTC")
    return await PostPlanner(client, store, settings.immich.external_url).plan(
        COMMAND_POST, now, zone
    )
