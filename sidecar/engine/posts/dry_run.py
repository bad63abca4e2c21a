"""``immich-sidecar dry-run --posts``: what each post would send if it ran now, planned as a run
would plan it, with the state file read and never written; nothing is sent."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from sidecar.clock import utc_now
from sidecar.config.checks import zone_of
from sidecar.config.cron import post_trigger
from sidecar.config.loader import load_settings
from sidecar.config.messages import words_for
from sidecar.config.model import ConfigError, Post, Settings
from sidecar.engine.posts.plan import PlannedMessage, last_fire, occasion_of
from sidecar.engine.posts.planner import PostPlanner
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.store.database import Store
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.messages.posts import post_content
from sidecar.ops.metrics import Metrics
from sidecar.wording import count


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
            planner = PostPlanner(
                client, store, settings.immich.external_url, settings.people_aliases
            )
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
                    for line in said_lines(settings, post, message):
                        print(f"      {line}", file=out)
    finally:
        store.close()
    return 0


def said_lines(settings: Settings, post: Post, message: PlannedMessage) -> list[str]:
    """What the message says in each of the post's targets, in the target's language (and the
    post's own words), where that differs from the English line above it."""
    lines = []
    url = settings.immich.external_url.rstrip("/")
    for target in post.targets:
        words = words_for(settings, target, post.messages, post.locale)
        text = post_content(
            message.facts,
            words,
            post=post.name,
            assets=message.assets,
            links=[f"{url}/photos/{a.id}" for a in message.assets],
        )
        if text != message.text:
            lines.append(f"says in {target} ({words.locale}): {text}")
    return lines


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
