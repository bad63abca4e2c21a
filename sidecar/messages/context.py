"""The documented context of a message template (version ``CONTEXT_VERSION``; docs/messages.md
lists it). Adding a name keeps the version; renaming or removing one bumps it.

Every message has ``people`` (the named people of its pictures, each once, by name), ``count``,
``photos``, ``videos``, ``assets`` (each ``type``, ``taken_at``, ``city``, ``country``,
``file_name``, ``description``, ``link``, ``owner``), ``album`` (``name``, ``link``,
``added_by``; None outside album rules), ``rule``, ``account`` and ``version``. Scheduled posts
add what their kind knows: memories ``year``, ``years_ago``, ``ages``, ``date``; birthdays
``person``, ``age``, ``date``; digests ``period``, ``ranking``, ``date``.

Every text that comes from Immich or Discord is escaped here, once, by the target's ``escape``
(Discord markdown and mentions for Discord, nothing for JSON), so no template can forget to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages.escape import Escape, plain

CONTEXT_VERSION = 1
KINDS = {"IMAGE": "photo", "VIDEO": "video", "AUDIO": "audio"}


@dataclass(frozen=True)
class AlbumFacts:
    """The album of an album rule's message."""

    name: str
    link: str
    added_by: str = ""  # who added the pictures, where known


def kind(asset: Asset) -> str:
    return KINDS.get(asset.type, "other")


def named_people(assets: Iterable[Asset]) -> list[str]:
    """The named people of these assets, each once, by name ignoring case (the order never
    depends on the order Immich found their faces in)."""
    found = {p.name for a in assets for p in a.people if p.name.strip()}
    return sorted(found, key=lambda name: (name.casefold(), name))


def asset_values(
    asset: Asset, link: str, escape: Escape = plain, owner: str = ""
) -> dict[str, Any]:
    return {
        "id": asset.id,
        "type": kind(asset),
        "taken_at": asset.taken_at,
        "city": escape(asset.city or ""),
        "country": escape(asset.country or ""),
        "file_name": escape(asset.original_file_name),
        "description": escape(asset.description or ""),
        "link": link,
        "owner": escape(owner),
        "people": [escape(name) for name in named_people([asset])],
    }


def message_context(
    *,
    rule: str,
    assets: Sequence[Asset],
    links: Sequence[str],
    escape: Escape = plain,
    album: AlbumFacts | None = None,
    account: str = "",
    post: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The context of one message showing ``assets`` (``links``: each one's link)."""
    videos = sum(1 for a in assets if a.type == "VIDEO")
    context: dict[str, Any] = {
        "version": CONTEXT_VERSION,
        "people": [escape(name) for name in named_people(assets)],
        "count": len(assets),
        "photos": len(assets) - videos,
        "videos": videos,
        "assets": [asset_values(a, link, escape) for a, link in zip(assets, links, strict=True)],
        "album": None
        if album is None
        else {
            "name": escape(album.name),
            "link": album.link,
            "added_by": escape(album.added_by),
        },
        "rule": escape(rule),
        "account": escape(account),
    }
    if post is not None:
        context.update(post_values(post, escape))
    return context


def post_values(facts: Mapping[str, Any], escape: Escape = plain) -> dict[str, Any]:
    """A post message's own names from the facts its plan stored (``PostRef.facts``): names
    escaped, dates as dates. ``count`` is the post's (a memory's photos), not its pictures'."""
    values: dict[str, Any] = {}
    for key, value in facts.items():
        if key in ("person", "period", "ranking") and isinstance(value, str):
            values[key] = escape(value)
        elif key == "date" and isinstance(value, str):
            values[key] = date.fromisoformat(value)
        elif key != "message":
            values[key] = value
    return values
