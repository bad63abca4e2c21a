"""What a rule's or post's messages say before the family reads them: ``immich-sidecar preview
RULE_OR_POST`` renders one message from sample data (or an asset of Immich's) exactly as each
of its targets would send it (the Discord payload, the JSON webhook's body, the console's
line), and ``dry-run`` prints the text of each message it would send. Sends nothing, stores
nothing."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from sidecar.config.loader import load_settings
from sidecar.config.messages import words_for
from sidecar.config.model import Batching, ConfigError, Post, Rule, Settings
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Asset, PersonRef, is_immich_id
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.messages.catalogs import UnknownLanguage, catalog_of
from sidecar.messages.posts import headline
from sidecar.messages.render import ENGLISH
from sidecar.messages.samples import sample_assets, sample_facts
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef, Batch, Delivery, PostRef
from sidecar.targets.console import ConsoleTarget, console_line
from sidecar.targets.discord.render.batch import render_batch
from sidecar.targets.http_webhook import HttpTarget, batch_body
from sidecar.targets.words import json_text

EXIT_BAD_CONFIG = 2


def batch_of(
    settings: Settings,
    name: str,
    target: str,
    deliveries: Sequence[Delivery],
    locale: str | None = None,
) -> Batch:
    """The batch a rule's or post's deliveries to ``target`` become, worded as the dispatcher
    words it."""
    rule = next((r for r in settings.rules if r.name == name), None)
    post = next((p for p in settings.posts if p.name == name), None)
    templates = rule.messages if rule is not None else post.messages if post else None
    words = (
        words_for(settings, target, templates, locale or (post.locale if post else None))
        if templates is not None
        else ENGLISH
    )
    batching = rule.batching if rule is not None else Batching()
    return Batch(
        rule=name,
        target=target,
        deliveries=tuple(deliveries),
        key="preview",
        mention_roles=rule.mention_roles if rule is not None else (),
        batching=batching,
        words=words,
    )


def rendered(settings: Settings, batch: Batch) -> list[Any]:
    """The batch as its target sends it: Discord payloads, the webhook's body, console lines."""
    target = settings.targets[batch.target]
    url = settings.immich.external_url
    if isinstance(target, HttpTarget):
        return [batch_body(batch, url)]
    if isinstance(target, ConsoleTarget):
        words = json_text(batch, url)
        return [json.loads(console_line(d, url, words)) for d in batch.deliveries]
    return [message.payload() for message in render_batch(batch, url, {})]


def texts_of(settings: Settings, batch: Batch) -> list[str]:
    """The text of each message the batch becomes (what ``dry-run`` prints)."""
    target = settings.targets[batch.target]
    if isinstance(target, HttpTarget | ConsoleTarget):
        return [json_text(batch, settings.immich.external_url)["text"]]
    return [m.content for m in render_batch(batch, settings.immich.external_url, {})]


def said_lines(
    settings: Settings, found: Sequence[tuple[str, Asset, AlbumRef | None]]
) -> list[str]:
    """``dry-run``: the text of each message the matches (rule, asset, album) would become, for
    each target of the rule, in the target's language."""
    by_rule: dict[tuple[str, str | None], list[Delivery]] = {}
    for index, (rule, asset, album) in enumerate(found, start=1):
        key = (rule, album.id if album is not None else None)
        by_rule.setdefault(key, []).append(Delivery(index, rule, "", asset, album=album))
    lines = []
    for (rule, _album), deliveries in by_rule.items():
        spec = next((r for r in settings.rules if r.name == rule), None)
        for target in spec.targets if spec is not None else ():
            batch = batch_of(settings, rule, target, deliveries)
            for text in texts_of(settings, batch):
                lines.append(f"{rule} says in {target} ({batch.words.locale}): {text}")
    return lines


def sample_deliveries(
    settings: Settings, rule: Rule | None, post: Post | None, assets: Sequence[Asset]
) -> list[Delivery]:
    """The deliveries of one message of this rule or post about ``assets``."""
    name = rule.name if rule is not None else post.name if post is not None else ""
    album = None
    if rule is not None and rule.albums.any:
        first = rule.albums.any[0]
        album = AlbumRef("preview-album", "" if is_immich_id(first) else first)
    ref = None
    if post is not None:
        facts = sample_facts(post.kind)
        ref = PostRef(post.name, post.kind, date.today().isoformat(), "preview", "", None, facts)
        ref = replace(ref, text=headline(facts, ENGLISH))
    return [
        Delivery(index, name, "", asset, album=album, post=ref)
        for index, asset in enumerate(assets, start=1)
    ]


def _with_people(assets: Sequence[Asset], names: Sequence[str]) -> list[Asset]:
    """The sample assets with the rule's own people in them, where it names some."""
    named = [n for n in names if not is_immich_id(n)]
    if not named:
        return list(assets)
    people = tuple(PersonRef(f"preview-{i}", n) for i, n in enumerate(named))
    return [replace(a, people=people[: max(1, len(people) - i)]) for i, a in enumerate(assets)]


def preview(
    config: Path, name: str, locale: str | None, asset_id: str | None, out: TextIO | None = None
) -> int:
    """``immich-sidecar preview``: print each target's message of rule or post ``name``."""
    out = out or sys.stdout
    try:
        settings = load_settings(config)
        if locale is not None:
            catalog_of(locale)
    except ConfigError as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return EXIT_BAD_CONFIG
    except UnknownLanguage as error:
        print(f"immich-sidecar: --locale: {error}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    rule = next((r for r in settings.rules if r.name == name), None)
    post = next((p for p in settings.posts if p.name == name), None)
    if rule is None and post is None:
        known = [r.name for r in settings.rules] + [p.name for p in settings.posts]
        print(
            f"immich-sidecar: no rule or post named {name!r}; there are: "
            + (", ".join(known) or "none"),
            file=sys.stderr,
        )
        return EXIT_BAD_CONFIG
    try:
        assets = _assets(settings, asset_id, rule)
    except ImmichError as error:
        print(f"immich-sidecar: cannot read asset {asset_id} from Immich: {error}", file=sys.stderr)
        return 1
    deliveries = sample_deliveries(settings, rule, post, assets)
    targets = rule.targets if rule is not None else post.targets if post is not None else ()
    for target in targets:
        batch = batch_of(settings, name, target, deliveries, locale)
        source = f"asset {asset_id}" if asset_id else "sample data"
        print(f"# {name} -> {target} ({batch.words.locale}, {source})", file=out)
        for message in rendered(settings, batch):
            print(json.dumps(message, indent=2, ensure_ascii=False), file=out)
    return 0


def _assets(settings: Settings, asset_id: str | None, rule: Rule | None) -> list[Asset]:
    if asset_id is None:
        names = (*rule.people.any, *rule.people.all) if rule is not None else ()
        return _with_people(sample_assets(), names)
    quiet_library_retry_hooks()
    return [asyncio.run(_fetch(settings, asset_id))]


async def _fetch(settings: Settings, asset_id: str) -> Asset:
    async with ImmichClient(settings.immich.url, settings.immich.api_key, Metrics()) as client:
        return await client.asset(asset_id)
