"""The Immich endpoints about people: listing, finding by name, one person, their face and
how many assets show them (part of ``ImmichClient``)."""

from __future__ import annotations

import json
from typing import Any

from sidecar.immich.models import Person
from sidecar.immich.transport import Transport, require_dict, require_int, require_list

MAX_PEOPLE_PAGES = 1_000


class PeopleEndpoints:
    """People endpoints of ``ImmichClient`` (which provides the transport)."""

    _io: Transport

    async def people(self, page: int = 1, size: int = 500) -> tuple[list[Person], bool]:
        """One page of visible named and unnamed people, and whether another page follows."""

        def parse(data: Any) -> tuple[list[Person], bool]:
            body = require_dict(data, "body")
            people = [Person.from_dict(p) for p in require_list(body["people"], "people")]
            return people, bool(body.get("hasNextPage", False))

        params = {"withHidden": "false", "page": str(page), "size": str(size)}
        return await self._io.call_json("GET", "/people", parse, params=params)

    async def all_people(self) -> list[Person]:
        everyone: list[Person] = []
        for page in range(1, MAX_PEOPLE_PAGES + 1):
            people, has_next = await self.people(page=page)
            everyone.extend(people)
            if not has_next:
                break
        return everyone

    async def search_person(self, name: str, *, with_hidden: bool = False) -> list[Person]:
        """People whose name is like ``name``, also those without faces. Immich's search is
        fuzzy (accent-insensitive trigram similarity, at most 100 answers): pick exact
        matches from the answer. Hidden people only ``with_hidden``."""

        def parse(data: Any) -> list[Person]:
            return [Person.from_dict(p) for p in require_list(data, "body")]

        params = {"name": name}
        if with_hidden:
            params["withHidden"] = "true"
        return await self._io.call_json("GET", "/search/person", parse, params=params)

    async def person(self, person_id: str) -> Person | None:
        """One person by id; None when Immich no longer has them (deleted, or merged into
        someone else: 2.x answers 400 "Not found or no person.read access", 3.x 404)."""
        answer = await self._io.request(
            "GET", "/people/{id}", path={"id": person_id}, allow={400, 404}
        )
        if answer.status in (400, 404):
            return None
        return Person.from_dict(require_dict(json.loads(answer.body), "body"))

    async def person_thumbnail(self, person_id: str) -> bytes | None:
        """The person's face picture, or None where Immich has none yet."""
        answer = await self._io.request(
            "GET", "/people/{id}/thumbnail", path={"id": person_id}, accept="image/*", allow={404}
        )
        return None if answer.status == 404 else answer.body

    async def person_statistics(self, person_id: str) -> int:
        """How many assets show this person."""
        return await self._io.call_json(
            "GET",
            "/people/{id}/statistics",
            lambda d: require_int(require_dict(d, "body")["assets"], "assets"),
            path={"id": person_id},
        )
