"""What ``init`` asks Immich: its version, whose the API key is and what it lacks, every named
person (with how many assets show them) and every album the key's user can see."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.engine.albums.resolve import all_listings, list_albums
from sidecar.engine.rules.matching import exact_people
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person
from sidecar.immich.permissions import FEATURES, gaps

COUNTING = 8  # person statistics asked at once


@dataclass(frozen=True)
class Named:
    """A person or album a rule can name: by name, or by id where the name is not unique."""

    name: str
    id: str
    count: int | None  # assets showing the person, or in the album (None: unknown)
    unique: bool  # no other person (album) has this name, ignoring case and accents

    @property
    def reference(self) -> str:
        """What a rule writes: the name, else the id."""
        return self.name if self.unique else self.id


@dataclass(frozen=True)
class Inventory:
    version: str
    user: str  # the key's user, "" when the key may not say
    lacking: tuple[tuple[str, tuple[str, ...]], ...]  # (feature, the permissions it lacks)
    people: tuple[Named, ...]  # most photographed first
    albums: tuple[Named, ...]  # largest first
    people_counted: bool  # False: in Immich's order (the key lacks person.statistics)
    notes: tuple[str, ...] = ()  # what could not be listed, and why


async def take_inventory(client: ImmichClient) -> Inventory:
    """Everything ``init`` writes about this Immich; ImmichError when Immich or the key fails
    (a 401 is ImmichAuthError). A listing the key may not read is left out, with a note."""
    version = str(await client.version())
    granted = await client.key_permissions()
    lacking = tuple((f.label, missing) for f, missing in gaps(FEATURES, granted).items())
    notes: list[str] = []
    user = ""
    with contextlib.suppress(ImmichPermissionError):  # user.read: only for the header
        user = (await client.me()).name
    people: tuple[Named, ...] = ()
    counted = False
    try:
        people, counted = await _people(client)
    except ImmichPermissionError:
        notes.append("people: the API key may not list them (person.read)")
    albums: tuple[Named, ...] = ()
    try:
        albums = await _albums(client)
    except ImmichPermissionError:
        notes.append("albums: the API key may not list them (album.read)")
    return Inventory(version, user, lacking, people, albums, counted, tuple(notes))


async def _people(client: ImmichClient) -> tuple[tuple[Named, ...], bool]:
    """Every named person Immich lists (those with a face in a visible photo), with how many
    assets show each when the key may ask; most photographed first."""
    named = [p for p in await client.all_people() if p.name.strip()]
    counts: list[int | None]
    try:
        counts = await _counts(client, named)
    except ImmichPermissionError:
        counts = [None] * len(named)
    found = [
        Named(p.name, p.id, count, len(exact_people(p.name, named)) == 1)
        for p, count in zip(named, counts, strict=True)
    ]
    counted = all(c is not None for c in counts)
    if counted:
        found.sort(key=lambda n: (-(n.count or 0), n.name.casefold()))
    return tuple(found), counted


async def _counts(client: ImmichClient, people: Sequence[Person]) -> list[int | None]:
    gate = asyncio.Semaphore(COUNTING)

    async def one(person: Person) -> int | None:
        async with gate:
            return await client.person_statistics(person.id)

    return list(await asyncio.gather(*(one(p) for p in people)))


async def _albums(client: ImmichClient) -> tuple[Named, ...]:
    """Every album the key's user can see (owned and shared), largest first."""
    albums = [a for a in (await list_albums(client, all_listings(client))).values() if a.name]
    folded = [a.name.casefold() for a in albums]
    found = [
        Named(a.name, a.id, a.asset_count, folded.count(f) == 1)
        for a, f in zip(albums, folded, strict=True)
    ]
    found.sort(key=lambda n: (-(n.count or 0), n.name.casefold()))
    return tuple(found)
