"""Scheduled posts, the I/O part: cron jobs on the sidecar's APScheduler, one run per occasion.

``PostScheduler.apply(settings)`` adds, removes and reschedules the jobs of the config's
``posts`` (start and every reload). A run asks Immich what to say (``posts`` decides), then
queues its messages in the outbox and keys the run (post, occasion) in the same transaction:
a restart, a reload or a second fire in the same minute never posts twice. ``catch_up`` makes
up, once, a run missed while the sidecar was down, when it is still the same occasion; a run
scheduled before the state file knew the post (a new state file, a post added since) was not
missed and is not made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sidecar.clock import utc_now
from sidecar.config.checks import post_trigger, zone_of
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Post, Settings
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.posts.accounts import PostSource
from sidecar.engine.posts.plan import (
    Plan,
    birthdays_today,
    fallback_windows,
    last_fire,
    occasion_of,
    pick_spread,
    plan_birthdays,
    plan_digest,
    plan_fallback,
    plan_memories,
)
from sidecar.engine.rules.matching import RuleResolutionError, is_person_id, resolve_person
from sidecar.engine.store.database import MATCH_LOG_DAYS, Store
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError, ImmichPermissionError
from sidecar.immich.models import Asset, Person
from sidecar.immich.permissions import post_features
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import PostRef
from sidecar.wording import count

log = logging.getLogger(__name__)

JOB_PREFIX = "post:"
KNOWN_SINCE_PREFIX = "post_known_since:"  # state meta: when this state file first had the post
MISFIRE_GRACE_SECONDS = 3600  # a fire delayed by a busy loop still runs (then coalesced)
RETRY_SECONDS = 300.0  # a run that failed (Immich down) is tried again this much later
BIRTHDAY_CANDIDATES = 50  # random photos of a person to pick from
FALLBACK_PER_YEAR = 100  # photos looked at per past year in the "on this day" fallback


@dataclass(frozen=True)
class RunResult:
    result: str  # sent, nothing, skipped, failure
    messages: int = 0
    note: str = ""


class PostPlanner:
    """Asks Immich what a post would say today; nothing is stored (dry-run and the runner)."""

    def __init__(self, client: PostSource, store: Store | None, external_url: str) -> None:
        self._client = client
        self._store = store
        self._external_url = external_url

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
        if not post.people:
            return None
        found: dict[str, list[Person]] = {}
        problems: list[str] = []
        ids = set()
        for position, name in enumerate(post.people):
            if name not in found and not is_person_id(name):
                found[name] = await self._client.search_person(name, with_hidden=True)
            person_id = resolve_person(
                name,
                lambda n: found.get(n, []),
                f"posts {post.name}: people.any[{position}]",
                problems,
            )
            if person_id is not None:
                ids.add(person_id)
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


class PostScheduler:
    """The posts' cron jobs on the sidecar's scheduler, and their runs."""

    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        client: ImmichClient,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime],
        queued: Callable[[], None],
        access: FeatureAccess | None = None,
        source_for: Callable[[Post], PostSource] | None = None,
    ) -> None:
        self._access = access  # a post whose feature is off is skipped, not retried
        self._scheduler = scheduler
        self._client = client
        self._source_for = source_for  # a post's accounts (default: the one client)
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._queued = queued
        self._posts: dict[str, Post] = {}
        self._zone = ZoneInfo("UTC")
        self._external_url = ""
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    def apply(self, settings: Settings) -> None:
        """Make the jobs match ``settings.posts``: add new ones, remove dropped ones,
        reschedule those whose cron or the time zone changed."""
        zone = zone_of(settings.timezone) or ZoneInfo("UTC")
        zone_changed = zone != self._zone
        self._zone = zone
        self._external_url = settings.immich.external_url
        old = self._posts
        self._posts = {post.name: post for post in settings.posts}
        for name in set(old) - set(self._posts):
            if self._scheduler.get_job(JOB_PREFIX + name) is not None:
                self._scheduler.remove_job(JOB_PREFIX + name)
            with contextlib.suppress(KeyError):  # never set when it had no next run
                self._metrics.post_next_run.remove(name)
            self._store.forget_meta(KNOWN_SINCE_PREFIX + name)
            log.info("post %s removed", name)
        for name, post in self._posts.items():
            if self._store.get_meta(KNOWN_SINCE_PREFIX + name) is None:
                # A state file from before this key: a post that ran is known since then.
                since = self._store.last_post_run(name) or self._clock()
                self._store.set_time(KNOWN_SINCE_PREFIX + name, since)
            job = self._scheduler.get_job(JOB_PREFIX + name)
            trigger = post_trigger(post.cron, zone)
            if job is None:
                self._scheduler.add_job(
                    self._fire,
                    trigger,
                    args=[name],
                    id=JOB_PREFIX + name,
                    name=name,
                    coalesce=True,
                    max_instances=1,
                    misfire_grace_time=MISFIRE_GRACE_SECONDS,
                )
            elif zone_changed or old[name].cron != post.cron:
                self._scheduler.reschedule_job(JOB_PREFIX + name, trigger=trigger)
                log.info("post %s rescheduled: %s", name, post.cron)
        self._update_next_runs()

    def next_runs(self) -> dict[str, datetime | None]:
        """When each post runs next (None when its schedule never fires again)."""
        now = self._clock()
        return {
            name: post_trigger(post.cron, self._zone).get_next_fire_time(None, now)
            for name, post in self._posts.items()
        }

    def _next_run_text(self, post: Post) -> str:
        when = post_trigger(post.cron, self._zone).get_next_fire_time(None, self._clock())
        return "never" if when is None else when.astimezone(self._zone).strftime("%Y-%m-%d %H:%M")

    def _update_next_runs(self) -> None:
        for name, when in self.next_runs().items():
            if when is not None:
                self._metrics.post_next_run.labels(post=name).set(when.timestamp())

    async def _fire(self, name: str) -> None:
        await self.run(name)

    async def catch_up(self) -> list[str]:
        """Run, once, every post whose last scheduled time today passed without a run (the
        sidecar was down). Returns the names of the posts run."""
        now = self._clock()
        made_up = []
        for name, post in list(self._posts.items()):
            fire = last_fire(post_trigger(post.cron, self._zone), now, self._zone)
            if fire is None or self._store.post_ran(name, occasion_of(fire, self._zone)):
                continue
            known = self._store.get_time(KNOWN_SINCE_PREFIX + name)
            if known is not None and fire < known:
                log.info(
                    "post %s: first run %s (today's run of %s was before this state file knew "
                    "the post, so it is not made up)",
                    name,
                    self._next_run_text(post),
                    fire.astimezone(self._zone).strftime("%H:%M"),
                )
                continue
            log.info(
                "post %s: making up the run of %s missed while the sidecar was down",
                name,
                fire.astimezone(self._zone).strftime("%Y-%m-%d %H:%M"),
            )
            made_up.append(name)
            await self.run(name)
        return made_up

    async def run(self, name: str) -> RunResult:
        """One run of a post for the occasion of its last scheduled time (today's)."""
        post = self._posts.get(name)
        if post is None or self._closed:
            return RunResult("skipped", note="no such post")
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            result = await self._run_locked(post)
        self._metrics.post_runs.labels(post=name, result=result.result).inc()
        self._update_next_runs()
        return result

    async def _run_locked(self, post: Post) -> RunResult:
        now = self._clock()
        fire = last_fire(post_trigger(post.cron, self._zone), now, self._zone)
        if fire is None:  # a retry after midnight: the new day's run is yet to come
            return RunResult("skipped", note="not scheduled yet today")
        occasion = occasion_of(fire, self._zone)
        if self._store.post_ran(post.name, occasion):
            log.info("post %s: already done for %s", post.name, occasion)
            return RunResult("skipped", note=f"already posted for {occasion}")
        off = self._off(post)
        if off:
            log.info("post %s: skipped for %s: %s", post.name, occasion, off)
            return RunResult("skipped", note=off)
        source = self._source_for(post) if self._source_for is not None else self._client
        planner = PostPlanner(source, self._store, self._external_url)
        try:
            since = self._store.last_post_run(post.name)
            plan = await planner.plan(post, now, self._zone, since)
        except ImmichPermissionError as err:
            permission = missing_permission(err.message)
            if self._access is None or permission is None:
                raise
            self._access.refused(permission)  # says once which features are off
            return RunResult("failure", note=str(err))
        except (ImmichError, RuleResolutionError) as err:
            problem = "; ".join(err.lines()) if isinstance(err, RuleResolutionError) else err
            log.error(
                "post %s failed for %s: %s; trying again in %.0fs",
                post.name,
                occasion,
                problem,
                RETRY_SECONDS,
            )
            self._retry_later(post.name)
            return RunResult("failure", note=str(problem))
        if self._closed:
            return RunResult("skipped", note="stopping")
        deliveries = [
            (
                target,
                asset,
                PostRef(
                    post=post.name,
                    kind=post.kind,
                    occasion=occasion,
                    group=message.group,
                    text=message.text,
                    link=message.link,
                ),
            )
            for message in plan.messages
            for target in post.targets
            for asset in message.assets
        ]
        if not self._store.record_post(post.name, occasion, deliveries, now):
            return RunResult("skipped", note=f"already posted for {occasion}")
        if post.kind == "digest":
            self._store.forget_matches_before(now - timedelta(days=MATCH_LOG_DAYS))
        log.info(
            "post %s for %s: %s, %d message(s)", post.name, occasion, plan.note, len(plan.messages)
        )
        if not plan.messages:
            return RunResult("nothing", note=plan.note)
        self._queued()
        return RunResult("sent", messages=len(plan.messages), note=plan.note)

    def _off(self, post: Post) -> str:
        """Why the post cannot run now (a feature it needs is off), or ""."""
        if self._access is None:
            return ""
        off = [f for f in post_features(post) if not self._access.is_on(f)]
        return f"{off[0].label} is off (the API key lacks a permission)" if off else ""

    def _retry_later(self, name: str) -> None:
        when = utc_now() + timedelta(seconds=RETRY_SECONDS)  # the scheduler's own time
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=when,
            args=[name],
            id=f"{JOB_PREFIX}{name}:retry",
            replace_existing=True,
        )

    async def close(self) -> None:
        """No new run starts; a run in flight finishes (it writes to the store)."""
        self._closed = True
        for lock in list(self._locks.values()):
            async with lock:
                pass


def dry_run_posts(config_path: Path, out: TextIO | None = None) -> int:
    """``immich-sidecar dry-run --posts``: what each post would send if it ran now. Reads the
    state file without writing it; sends nothing."""
    return asyncio.run(_dry_run_posts(config_path, out or sys.stdout))


async def _dry_run_posts(config_path: Path, out: TextIO) -> int:
    try:
        settings = load_settings(config_path)
    except ConfigError as err:
        for problem in err.lines():
            print(problem, file=sys.stderr)
        return 2
    if not settings.posts:
        print("no posts in the config", file=out)
        return 0
    zone = zone_of(settings.timezone) or ZoneInfo("UTC")
    now = utc_now()
    store = Store.open_for_reading(settings.state.path)
    try:
        async with ImmichClient(settings.immich.url, settings.immich.api_key, Metrics()) as client:
            planner = PostPlanner(client, store, settings.immich.external_url)
            print(
                f"dry run of {count(len(settings.posts), 'post')} for "
                f"{now.astimezone(zone):%Y-%m-%d} ({settings.timezone}); nothing is stored "
                "or sent",
                file=out,
            )
            for post in settings.posts:
                done = _already_sent(store, post, now, zone)
                if done is not None:
                    print(
                        f"{post.name} ({post.kind}) -> {', '.join(post.targets)}: {done}", file=out
                    )
                    continue
                try:
                    plan = await planner.plan(post, now, zone, store.last_post_run(post.name))
                except (ImmichError, RuleResolutionError) as err:
                    print(f"{post.name}: cannot plan: {err}", file=out)
                    continue
                print(
                    f"{post.name} ({post.kind}) -> {', '.join(post.targets)}: {plan.note}", file=out
                )
                for message in plan.messages:
                    print(
                        f"    {message.text} [{count(len(message.assets), 'picture')}]"
                        f"{' ' + message.link if message.link else ''}",
                        file=out,
                    )
    finally:
        store.close()
    return 0


def _already_sent(store: Store, post: Post, now: datetime, zone: ZoneInfo) -> str | None:
    """What ``dry-run --posts`` says of a post whose run for today is done (a run would skip
    it), or None."""
    trigger = post_trigger(post.cron, zone)
    fire = last_fire(trigger, now, zone)
    if fire is None or not store.post_ran(post.name, occasion_of(fire, zone)):
        return None
    ran = store.last_post_run(post.name)
    at = f" at {ran.astimezone(zone):%H:%M}" if ran is not None else ""
    upcoming = trigger.get_next_fire_time(None, now)
    following = (
        f"; next run {upcoming.astimezone(zone):%a %Y-%m-%d %H:%M}" if upcoming is not None else ""
    )
    return f"already sent for {occasion_of(fire, zone)}{at}, nothing more today{following}"
