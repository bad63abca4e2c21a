"""Scheduled posts, the I/O part: cron jobs on the sidecar's APScheduler, one run per occasion.

``PostScheduler.apply(settings)`` adds, removes and reschedules the jobs of the config's
``posts`` (start and every reload). A run asks Immich what to say (``posts.planner``, with
``posts.plan`` deciding), then queues its messages in the outbox and keys the run (post,
occasion) in the same transaction: a restart, a reload or a second fire in the same minute
never posts twice. ``catch_up`` makes up, once, a run missed while the sidecar was down, when
it is still the same occasion; a run scheduled before the state file knew the post (a new
state file, a post added since) was not missed and is not made up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sidecar.clock import utc_now
from sidecar.config.checks import zone_of
from sidecar.config.cron import post_trigger
from sidecar.config.model import PeopleAliases, Post, Settings
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.posts.accounts import PostSource
from sidecar.engine.posts.plan import Plan, last_fire, occasion_of
from sidecar.engine.posts.planner import PostPlanner
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.store.database import Store
from sidecar.engine.store.outbox import MATCH_LOG_DAYS
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError, ImmichPermissionError
from sidecar.immich.models import Asset
from sidecar.immich.permissions import post_features
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import PostRef

log = logging.getLogger(__name__)

JOB_PREFIX = "post:"
KNOWN_SINCE_PREFIX = "post_known_since:"  # state meta: when this state file first had the post
MISFIRE_GRACE_SECONDS = 3600  # a fire delayed by a busy loop still runs (then coalesced)
RETRY_SECONDS = 300.0  # a run that failed (Immich down) is tried again this much later


@dataclass(frozen=True)
class RunResult:
    result: str  # sent, nothing, skipped, failure
    messages: int = 0
    note: str = ""


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
        self._aliases = PeopleAliases()
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
        self._aliases = settings.people_aliases
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
        skipped = self._skipped(post, occasion)
        if skipped is not None:
            return skipped
        plan = await self._plan(post, occasion, now)
        if isinstance(plan, RunResult):
            return plan
        if self._closed:
            return RunResult("skipped", note="stopping")
        return self._queue(post, occasion, plan, now)

    def _skipped(self, post: Post, occasion: str) -> RunResult | None:
        """Why this occasion's run does not happen (done already, a feature off), or None."""
        if self._store.post_ran(post.name, occasion):
            log.info("post %s: already done for %s", post.name, occasion)
            return RunResult("skipped", note=f"already posted for {occasion}")
        off = self._off(post)
        if off:
            log.info("post %s: skipped for %s: %s", post.name, occasion, off)
            return RunResult("skipped", note=off)
        return None

    async def _plan(self, post: Post, occasion: str, now: datetime) -> Plan | RunResult:
        """What the run says, or its failure: a missing permission turns the feature off, an
        Immich outage or an unknown person is tried again later."""
        source = self._source_for(post) if self._source_for is not None else self._client
        planner = PostPlanner(source, self._store, self._external_url, self._aliases)
        try:
            since = self._store.last_post_run(post.name)
            return await planner.plan(post, now, self._zone, since)
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

    def _queue(self, post: Post, occasion: str, plan: Plan, now: datetime) -> RunResult:
        """Queue the plan's messages and key the run, in one transaction."""
        if not self._store.record_post(
            post.name, occasion, post_deliveries(post, occasion, plan), now
        ):
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


def post_deliveries(post: Post, occasion: str, plan: Plan) -> list[tuple[str, Asset, PostRef]]:
    """(target, asset, message) of every picture of the plan, for every target of the post."""
    return [
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
                facts=message.facts,
            ),
        )
        for message in plan.messages
        for target in post.targets
        for asset in message.assets
    ]
