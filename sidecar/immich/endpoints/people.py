"""The Immich endpoints about people and what scheduled posts show (memories, random photos),
part of ``ImmichClient``."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sidecar.immich.endpoints.search import check_size
from sidecar.immich.models import (
    Asset,
    Memory,
    Person,
    ServerVersion,
)
from sidecar.immich.transport import (
    Transport,
    isoformat,
    require_dict,
    require_int,
    require_list,
)

log = logging.getLogger(__name__)


MAX_PEOPLE_PAGES = 1_000


class PeopleEndpoints:
    """People and scheduled-post endpoints of ``ImmichClient`` (which provides the transport
    and the version)."""

    _io: Transport

    async def known_version(self) -> ServerVersion:
        raise NotImplementedError  # ImmichClient's: the version, asked once

    # -- people ---------------------------------------------------------------------------

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

    # -- scheduled posts ------------------------------------------------------------------

    async def memories_on(self, day: date) -> list[Memory]:
        """Immich's "on this day" memories shown on ``day``. 3.x takes a plain date, 2.x a
        date-time (the start of that day, UTC)."""

        def parse(data: Any) -> list[Memory]:
            return [Memory.from_dict(m) for m in require_list(data, "body")]

        version = await self.known_version()
        when = day.isoformat() if version.major >= 3 else f"{day.isoformat()}T00:00:00.000Z"
        return await self._io.call_json(
            "GET", "/memories", parse, params={"for": when, "type": "on_this_day"}
        )

    async def random_assets(
        self,
        *,
        person_ids: Sequence[str] = (),
        size: int = 10,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
    ) -> list[Asset]:
        """A random pick of timeline assets (``person_ids``: ALL of them on each). Unlike
        ``search/metadata``, Immich answers a bare array here."""

        def parse(data: Any) -> list[Asset]:
            return [Asset.from_dict(a) for a in require_list(data, "body")]

        check_size(size)
        body: dict[str, Any] = {
            "size": size,
            "withPeople": True,
            "withExif": True,
            "visibility": "timeline",
            "type": "IMAGE",
        }
        if person_ids:
            body["personIds"] = list(person_ids)
        if taken_after is not None:
            body["takenAfter"] = isoformat(taken_after)
        if taken_before is not None:
            body["takenBefore"] = isoformat(taken_before)
        return await self._io.call_json("POST", "/search/random", parse, json_body=body)
