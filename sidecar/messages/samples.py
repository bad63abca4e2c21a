"""Sample data of each kind of message (a rule's, an album rule's, each kind of post's): what a
template is rendered against when the config loads, and what ``preview`` shows without an
asset. Names that would ping or format if a template forgot the escape are part of it."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sidecar.immich.models import Asset, PersonRef
from sidecar.messages.context import AlbumFacts, message_context
from sidecar.messages.escape import Escape, plain
from sidecar.messages.posts import post_facts
from sidecar.messages.render import ENGLISH, Words

MESSAGE_KINDS = ("rule", "album", "memories", "birthdays", "digest")
SAMPLE_URL = "https://immich.example"
TODAY = date(2026, 6, 14)


def sample_assets() -> tuple[Asset, ...]:
    alice, bob = PersonRef("sample-alice", "Alice"), PersonRef("sample-bob", "Bob")

    def asset(n: int, kind: str, people: tuple[PersonRef, ...], city: str | None) -> Asset:
        taken = datetime(2026, 6, 13, 9 + n, 30, tzinfo=UTC)
        return Asset(
            id=f"00000000-0000-4000-8000-00000000000{n}",
            type=kind,
            created_at=taken,
            taken_at=taken,
            original_file_name=f"IMG_000{n}.{'MP4' if kind == 'VIDEO' else 'JPG'}",
            visibility="timeline",
            is_trashed=False,
            people=people,
            city=city,
            country="Deutschland" if city else None,
            description="At the lake" if n == 1 else None,
        )

    return (
        asset(1, "IMAGE", (alice, bob), "Berlin"),
        asset(2, "IMAGE", (alice,), "Potsdam"),
        asset(3, "VIDEO", (bob,), None),
    )


def sample_facts(kind: str) -> dict[str, Any]:
    """A post message's facts as its plan stores them (``PostRef.facts``)."""
    today = TODAY.isoformat()
    if kind == "memories":
        return {
            "message": "memory_year",
            "year": 2023,
            "years_ago": 3,
            "count": 3,
            "date": today,
            "taken": "2023-06-14T10:30:00+00:00",
        }
    if kind == "birthdays":
        return {"message": "birthday", "person": "Alice", "age": 36, "date": today}
    if kind == "digest":
        ranking = [["Alice", 2], ["Bob", 2]]
        return {
            "message": "digest",
            "period": "week",
            "ranking": ranking,
            "count": 3,
            "date": today,
        }
    return {}


def sample_context(
    kind: str, words: Words = ENGLISH, escape: Escape = plain, rule: str = "family"
) -> dict[str, Any]:
    """The context of a message of ``kind`` (one of ``MESSAGE_KINDS``) about the sample
    assets."""
    assets = sample_assets()
    links = [f"{SAMPLE_URL}/photos/{a.id}" for a in assets]
    album = AlbumFacts("Summer holiday", f"{SAMPLE_URL}/albums/sample") if kind == "album" else None
    context = message_context(
        rule=rule, assets=assets, links=links, escape=escape, album=album, account="default"
    )
    if kind in ("memories", "birthdays", "digest"):
        context.update(post_facts(sample_facts(kind), words, escape))
    return context
