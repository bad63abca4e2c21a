"""What a batch's message says, for every target kind alike: its template context (the
documented one of ``sidecar.messages.context``), its content (the rule's or post's own
template, else the built-in text in the target's language) and, where the config gives them,
its title and description. Discord escapes every value from Immich (``discord_escape``); the
JSON webhook and the console read them as they are (``plain``). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages import texts
from sidecar.messages.context import AlbumFacts, message_context
from sidecar.messages.escape import Escape, plain
from sidecar.messages.posts import headline, post_facts
from sidecar.messages.render import custom, say
from sidecar.messages.texts import Text
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.links import Links

# (people named, kinds shown) -> the built-in content of a rule's or album rule's message
_CONTENT: dict[tuple[str, str], Text] = {
    ("people", "photo"): texts.PEOPLE_PHOTOS,
    ("people", "video"): texts.PEOPLE_VIDEOS,
    ("people", "mixed"): texts.PEOPLE_MIXED,
    ("rule", "photo"): texts.RULE_PHOTOS,
    ("rule", "video"): texts.RULE_VIDEOS,
    ("rule", "mixed"): texts.RULE_MIXED,
    ("album", "photo"): texts.ALBUM_PHOTOS,
    ("album", "video"): texts.ALBUM_VIDEOS,
    ("album", "mixed"): texts.ALBUM_MIXED,
}


LinksOrUrl = Links | str | None  # a target's links, or the external URL (links into Immich)


def links_of(links: LinksOrUrl) -> Links:
    if isinstance(links, Links):
        return links
    return Links("immich", links) if links else Links("none", "")


def batch_context(
    batch: Batch,
    deliveries: Sequence[Delivery],
    links: LinksOrUrl,
    escape: Escape = plain,
) -> dict[str, Any]:
    """The template context of one message of ``batch`` showing ``deliveries`` (a link the
    target does not give is "")."""
    where = links_of(links)
    first = deliveries[0] if deliveries else None
    album = first.album if first is not None else None
    post = first.post if first is not None else None
    facts = None
    if album is not None:
        name = album.name or say(batch.words, texts.UNNAMED_ALBUM, {})
        facts = AlbumFacts(name, where.album(album.id) or "")
    context = message_context(
        rule=", ".join(batch.rule_names),  # a message several rules sent names every one
        assets=[d.asset for d in deliveries],
        links=[
            where.asset(d.asset.id, d.album.id if d.album is not None else None) or ""
            for d in deliveries
        ],
        escape=escape,
        album=facts,
    )
    if post is not None and post.facts:
        context.update(post_facts(post.facts, batch.words, escape))
    return context


def _kinds(assets: Sequence[Asset]) -> str:
    videos = sum(1 for a in assets if a.type == "VIDEO")
    return "video" if videos == len(assets) else "photo" if not videos else "mixed"


def content(
    batch: Batch,
    deliveries: Sequence[Delivery],
    links: LinksOrUrl,
    escape: Escape = plain,
    seed: str = "",
) -> str:
    """The message's text: the config's content template (one picked by ``seed``), else the
    built-in line ("Alice und Bob: 3 neue Fotos", a post's headline)."""
    context = batch_context(batch, deliveries, links, escape)
    own = custom(batch.words, "content", context, seed or batch.key)
    if own is not None:
        return own
    post = deliveries[0].post if deliveries else None
    if post is not None:
        return headline(post.facts, batch.words, escape) or escape(post.text)
    assets = [d.asset for d in deliveries]
    if context["album"] is not None:
        return say(batch.words, _CONTENT[("album", _kinds(assets))], context)
    # The built-in line names whoever is in every picture, else the rule: "Alice: 42 new
    # photos" must not stand over a burst that shows Alice in one of them.
    common = [escape(n) for n in _in_every(assets)]
    who = "people" if common else "rule"
    return say(batch.words, _CONTENT[(who, _kinds(assets))], {**context, "people": common})


def _in_every(assets: Sequence[Asset]) -> list[str]:
    named = [{p.name for p in a.people if p.name.strip()} for a in assets]
    common = set.intersection(*named) if named else set()
    return sorted(common, key=lambda name: (name.casefold(), name))


def own_text(
    batch: Batch,
    key: str,
    deliveries: Sequence[Delivery],
    links: LinksOrUrl,
    escape: Escape = plain,
) -> str | None:
    """The config's ``title``, ``description`` or ``footer`` for this message, if it gives
    one."""
    if not batch.words.templates.sources(key):
        return None
    return custom(batch.words, key, batch_context(batch, deliveries, links, escape))


def json_text(batch: Batch, links: LinksOrUrl) -> dict[str, str]:
    """``text`` (and ``title``/``description`` where the config gives them) of a batch, as the
    JSON webhook and the console show them beside their fields."""
    found = {"text": content(batch, batch.deliveries, links)}
    for key in ("title", "description"):
        value = own_text(batch, key, batch.deliveries, links)
        if value is not None:
            found[key] = value
    return found
