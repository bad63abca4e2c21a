"""What a scheduled post asks Immich, across several accounts, as if they were one library.

Each account has its own people: "Grandma" in Dad's library and "Grandma" in Mum's are two
person ids. Here the first account's person of a name stands for everyone's person of that name
(exactly that name or one of its ``people_aliases``, ignoring case; with birthdays, also the
same birth date): the other accounts' ids are translated to it on every asset, and a question
about it is asked in every account with that account's own id. Memories of the same year are
merged into one, and an asset reached through two accounts (partner sharing) appears once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import date, datetime
from typing import Protocol

from sidecar.config.model import PeopleAliases
from sidecar.engine.rules.matching import NO_ALIASES, exact_people
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Asset, Memory, Person, SearchPage


class PostSource(Protocol):
    """The Immich calls a post makes (``ImmichClient``, or several as one)."""

    async def search_person(self, name: str, *, with_hidden: bool = False) -> list[Person]: ...

    async def memories_on(self, day: date) -> list[Memory]: ...

    async def all_people(self) -> list[Person]: ...

    async def random_assets(
        self,
        *,
        person_ids: Sequence[str] = (),
        size: int = 10,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
    ) -> list[Asset]: ...

    async def search_metadata(
        self,
        *,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        size: int = 1000,
        person_ids: Sequence[str] = (),
        with_people: bool = True,
        with_exif: bool = True,
    ) -> SearchPage: ...


class MergedAccounts:
    """Several accounts' clients answering a post as one (see the module's words)."""

    def __init__(
        self, clients: Sequence[ImmichClient], aliases: PeopleAliases = NO_ALIASES
    ) -> None:
        self._clients = tuple(clients)
        self._aliases = aliases
        self._canonical: dict[str, str] = {}  # any account's person id -> the standing id
        self._own: dict[str, dict[int, str]] = {}  # standing id -> account index -> its id
        self._standing: dict[str, Person] = {}  # a name's group (casefolded) -> who stands

    def _link(self, index: int, person: Person, standing: str) -> None:
        self._canonical[person.id] = standing
        self._own.setdefault(standing, {})[index] = person.id

    def _translate(self, asset: Asset) -> Asset:
        if not any(p.id in self._canonical for p in asset.people):
            return asset
        people = tuple(replace(p, id=self._canonical.get(p.id, p.id)) for p in asset.people)
        return replace(asset, people=people)

    def _merge(self, groups: Iterable[Iterable[Asset]]) -> list[Asset]:
        seen: dict[str, Asset] = {}
        for group in groups:
            for asset in group:
                seen.setdefault(asset.id, self._translate(asset))
        return list(seen.values())

    def _ids_in(self, index: int, person_ids: Sequence[str]) -> list[str] | None:
        """The account's own ids for these people, or None when it lacks one of them."""
        own = []
        for person_id in person_ids:
            links = self._own.get(person_id)  # None: an id from the config, asked as it is
            own.append(person_id if links is None else links.get(index, ""))
        return None if "" in own else own

    def holders(self, person_id: str) -> tuple[int, ...]:
        """The accounts (indices of the clients given) in which ``search_person`` or
        ``all_people`` found this person, by the id it answered."""
        return tuple(sorted(self._own.get(person_id, {})))

    async def search_person(self, name: str, *, with_hidden: bool = False) -> list[Person]:
        """Every account's answer, the people of exactly this name (one of a group of
        aliases) as the one person who stands for them all, listed first."""
        answers = [await c.search_person(name, with_hidden=with_hidden) for c in self._clients]
        group = self._aliases.canonical(name).casefold()
        result: list[Person] = []
        named = False
        for index, candidates in enumerate(answers):
            exact = exact_people(name, candidates)
            if exact:
                standing = self._standing.setdefault(group, exact[0])
                for person in reversed(exact):  # the first of several speaks for the account
                    self._link(index, person, standing.id)
                named = True
            result += [p for p in candidates if p not in exact]
        return ([self._standing[group]] if named else []) + result

    async def all_people(self) -> list[Person]:
        standing: dict[tuple[str, date | None], Person] = {}
        everyone: list[Person] = []
        for index, client in enumerate(self._clients):
            for person in await client.all_people():
                key = (self._aliases.canonical(person.name).casefold(), person.birth_date)
                first = standing.get(key) if person.name else None
                if first is None:
                    standing.setdefault(key, person)
                    self._link(index, person, person.id)
                    everyone.append(person)
                else:
                    self._link(index, person, first.id)
        return everyone

    async def memories_on(self, day: date) -> list[Memory]:
        by_year: dict[int, tuple[Memory, list[list[Asset]]]] = {}
        for client in self._clients:
            for memory in await client.memories_on(day):
                by_year.setdefault(memory.year, (memory, []))[1].append(list(memory.assets))
        return [
            replace(memory, assets=tuple(self._merge(groups)))
            for memory, groups in sorted(
                by_year.values(), key=lambda entry: entry[0].memory_at, reverse=True
            )
        ]

    async def random_assets(
        self,
        *,
        person_ids: Sequence[str] = (),
        size: int = 10,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
    ) -> list[Asset]:
        groups = []
        for index, client in enumerate(self._clients):
            own = self._ids_in(index, person_ids)
            if own is not None:
                groups.append(
                    await client.random_assets(
                        person_ids=own,
                        size=size,
                        taken_after=taken_after,
                        taken_before=taken_before,
                    )
                )
        return self._merge(groups)

    async def search_metadata(
        self,
        *,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        size: int = 1000,
        person_ids: Sequence[str] = (),
        with_people: bool = True,
        with_exif: bool = True,
    ) -> SearchPage:
        """One page from each account, merged (the posts' fallback asks for one page)."""
        groups = []
        for index, client in enumerate(self._clients):
            own = self._ids_in(index, person_ids)
            if own is not None:
                page = await client.search_metadata(
                    taken_after=taken_after,
                    taken_before=taken_before,
                    size=size,
                    person_ids=own,
                    with_people=with_people,
                    with_exif=with_exif,
                )
                groups.append(page.assets)
        return SearchPage(tuple(self._merge(groups)), None)
