"""The Immich search endpoints: ``POST /search/metadata`` (the flat 2.x/3.x form, paged without
loss, and the 3.2+ ``filter`` form), ``POST /search/statistics`` (a count) and
``POST /search/random``, and how their answers read (part of ``ImmichClient``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from sidecar.immich.models import Asset, SearchPage, ServerVersion
from sidecar.immich.paging import Bounds, lossless_pages
from sidecar.immich.transport import (
    ShapeError,
    Transport,
    isoformat,
    require_dict,
    require_int,
    require_list,
)

SEARCH_PAGE_SIZE = 1000  # Immich's maximum for search/metadata
MAX_SEARCH_PAGES = 10_000  # hard stop for a server that keeps answering "next page"


def check_size(size: int) -> None:
    if not 1 <= size <= SEARCH_PAGE_SIZE:
        raise ValueError("search page size must be between 1 and 1000")


def search_page(data: Any, *, cursor_form: bool) -> SearchPage:
    assets = require_dict(require_dict(data, "body")["assets"], "assets")
    items = require_list(assets["items"], "assets.items")
    following = assets.get("nextCursor") if cursor_form else assets["nextPage"]
    if following is not None and not isinstance(following, str):
        raise ShapeError("the next page token is not a string")
    if following is not None and not cursor_form and not following.isdigit():
        raise ShapeError("assets.nextPage is not a page number")
    return SearchPage(
        assets=tuple(Asset.from_dict(require_dict(a, "asset")) for a in items),
        next_page=following,
    )


class SearchEndpoints:
    """Search endpoints of ``ImmichClient`` (which provides the transport and the version)."""

    _io: Transport
    _server_version: ServerVersion | None

    async def search_metadata(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        person_ids: Sequence[str] = (),
        asset_type: str | None = None,
        page: str | None = None,
        size: int = 1000,
        with_people: bool = True,
        with_exif: bool = True,
        taken_after: datetime | None = None,
        taken_before: datetime | None = None,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> SearchPage:
        """One page of timeline assets (flat 2.x/3.x form). ``person_ids`` means ALL of them.
        Every bound includes its own moment. ``with_exif`` inner-joins Immich's exif table: an
        asset whose file Immich has not read yet (an external library's, until metadata
        extraction ran) is left out."""
        check_size(size)
        body: dict[str, Any] = {
            "visibility": "timeline",
            "withPeople": with_people,
            "withExif": with_exif,
            "size": size,
        }
        if created_after is not None:
            body["createdAfter"] = isoformat(created_after)
        if created_before is not None:
            body["createdBefore"] = isoformat(created_before)
        if taken_after is not None:
            body["takenAfter"] = isoformat(taken_after)
        if taken_before is not None:
            body["takenBefore"] = isoformat(taken_before)
        if updated_after is not None:
            body["updatedAfter"] = isoformat(updated_after)
        if updated_before is not None:
            body["updatedBefore"] = isoformat(updated_before)
        if person_ids:
            body["personIds"] = list(person_ids)
        if asset_type is not None:
            body["type"] = asset_type
        if page is not None:
            if not page.isdigit():
                raise ValueError(f"search page must be a page number, not {page[:40]!r}")
            body["page"] = int(page)
        return await self._io.call_json(
            "POST", "/search/metadata", lambda d: search_page(d, cursor_form=False), json_body=body
        )

    async def search_metadata_filter(
        self,
        *,
        filter: Mapping[str, Any],
        cursor: str | None = None,
        size: int = 1000,
        with_people: bool = True,
        with_exif: bool = True,
    ) -> SearchPage:
        """One page in the Immich 3.2+ form (``filter`` + ``cursor``); ``next_page`` is the
        next cursor. Only for servers where ``ServerVersion.has_search_filter``: older ones
        do not know ``filter``: they ignore it and answer every asset, unfiltered."""
        version = self._server_version
        if version is not None and not version.has_search_filter:
            raise ValueError(f"Immich {version} has no search filter (3.2 added it)")
        check_size(size)
        body: dict[str, Any] = {
            "filter": dict(filter),
            "size": size,
            "withPeople": with_people,
            "withExif": with_exif,
        }
        if cursor is not None:
            body["cursor"] = cursor
        return await self._io.call_json(
            "POST", "/search/metadata", lambda d: search_page(d, cursor_form=True), json_body=body
        )

    async def iter_search(
        self,
        *,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        person_ids: Sequence[str] = (),
        asset_type: str | None = None,
        size: int = 1000,
        with_people: bool = True,
        with_exif: bool = True,
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
    ) -> AsyncIterator[SearchPage]:
        """Every asset of a flat search once, a page at a time (bounded). Not by offset: before
        3.1 Immich breaks no ties in its order, and offsets would skip some (see ``paging``)."""

        async def fetch(bounds: Bounds, page: int | None) -> SearchPage:
            return await self.search_metadata(
                created_after=bounds.created_after,
                created_before=bounds.created_before,
                taken_after=bounds.taken_after,
                taken_before=bounds.taken_before,
                updated_after=bounds.updated_after,
                updated_before=bounds.updated_before,
                person_ids=person_ids,
                asset_type=asset_type,
                page=None if page is None else str(page),
                size=size,
                with_people=with_people,
                with_exif=with_exif,
            )

        window = Bounds(
            created_after=created_after,
            created_before=created_before,
            updated_after=updated_after,
            updated_before=updated_before,
        )
        # Offsets are safe from 3.1 on; a version not asked yet counts as older (never asked
        # here: the sidecar learns it at start).
        stable = self._server_version is not None and self._server_version.breaks_ties
        async for assets in lossless_pages(
            fetch, window, max_requests=MAX_SEARCH_PAGES, stable_ties=stable
        ):
            yield SearchPage(assets=assets, next_page=None)

    async def count_assets(
        self,
        after: datetime,
        before: datetime,
        asset_type: str | None = None,
    ) -> int:
        """How many timeline assets were created in [after, before] (of one type, when given),
        whether or not Immich has read their files yet: ``POST /search/statistics`` joins no
        exif table. One small request whatever the count."""
        body: dict[str, Any] = {
            "visibility": "timeline",
            "createdAfter": isoformat(after),
            "createdBefore": isoformat(before),
        }
        if asset_type is not None:
            body["type"] = asset_type
        return await self._io.call_json(
            "POST",
            "/search/statistics",
            lambda d: require_int(require_dict(d, "body")["total"], "total"),
            json_body=body,
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
