"""The Immich API client: what the sidecar asks Immich, in its own words.

Works with Immich 2.x and 3.x and keeps every difference between them here: it learns the
server version once, and its intent-level methods (``assets_of_people``, ``new_assets``,
``upload_asset``, ...) pick the form that version understands. Sending, retries, size caps,
metrics and error mapping are the transport's (``sidecar.immich.transport``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from sidecar.config.model import Secret
from sidecar.immich.endpoints.albums import AlbumEndpoints
from sidecar.immich.endpoints.people import PeopleEndpoints
from sidecar.immich.endpoints.search import (
    MAX_SEARCH_PAGES,
    SEARCH_PAGE_SIZE,
    check_size,
    search_page,
)
from sidecar.immich.endpoints.workflows import WorkflowEndpoints
from sidecar.immich.errors import (
    shorten,
)
from sidecar.immich.models import (
    Album,
    Asset,
    ImmichUser,
    SearchPage,
    ServerVersion,
    UploadResult,
)
from sidecar.immich.paging import Bounds, lossless_pages
from sidecar.immich.permissions import FEATURES, permissions_for
from sidecar.immich.transport import (
    ShapeError,
    Transport,
    isoformat,
    require_dict,
    require_int,
    require_list,
)
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)


# Every permission some feature needs (sidecar.immich.permissions says which); the contract
# test checks each name against the specs' Permission enum.
REQUIRED_PERMISSIONS = permissions_for(FEATURES)

THUMBNAIL_SIZES = frozenset({"thumbnail", "preview", "fullsize", "original"})


class ImmichClient(PeopleEndpoints, AlbumEndpoints, WorkflowEndpoints):
    """Async client for the parts of the Immich API the sidecar uses."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        metrics: Metrics,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        wait_initial: float = 0.5,
        wait_max: float = 10.0,
    ) -> None:
        self._io = Transport(
            base_url,
            api_key,
            metrics,
            timeout=timeout,
            max_attempts=max_attempts,
            max_retry_seconds=max_retry_seconds,
            transport=transport,
            wait_initial=wait_initial,
            wait_max=wait_max,
        )
        self._server_version: ServerVersion | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._io.aclose()

    @property
    def server_version(self) -> ServerVersion | None:
        """The version learnt by the last ``version()`` call, if any."""
        return self._server_version

    # -- server ---------------------------------------------------------------------------

    async def version(self) -> ServerVersion:
        """The server version (remembered: 2.x and 3.x differ in upload fields)."""

        def parse(data: Any) -> ServerVersion:
            body = require_dict(data, "body")
            return ServerVersion(
                major=require_int(body["major"], "major"),
                minor=require_int(body["minor"], "minor"),
                patch=require_int(body["patch"], "patch"),
            )

        self._server_version = await self._io.call_json(
            "GET", "/server/version", parse, authenticated=False
        )
        return self._server_version

    async def key_permissions(self) -> frozenset[str]:
        """The permissions of the API key (``all`` grants every one); a 401 for a bad key."""

        def parse(data: Any) -> frozenset[str]:
            perms = require_list(require_dict(data, "body")["permissions"], "permissions")
            return frozenset(str(p) for p in perms)

        return await self._io.call_json("GET", "/api-keys/me", parse)

    async def me(self) -> ImmichUser:
        """The user the API key belongs to (permission ``user.read``)."""

        def parse(data: Any) -> ImmichUser:
            body = require_dict(data, "body")
            if not isinstance(body.get("id"), str):
                raise ShapeError("the user has no id")
            return ImmichUser.from_dict(body)

        return await self._io.call_json("GET", "/users/me", parse)

    async def missing_permissions(self, required: Iterable[str]) -> list[str]:
        """The permissions in ``required`` that the API key lacks (``all`` grants every one)."""
        granted = await self.key_permissions()
        if "all" in granted:
            return []
        return list(dict.fromkeys(p for p in required if p not in granted))

    # -- search ---------------------------------------------------------------------------

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

    # -- what a poll asks, whatever the version -------------------------------------------

    async def known_version(self) -> ServerVersion:
        """The server version, asked once and remembered."""
        return self._server_version or await self.version()

    async def assets_of_people(
        self,
        person_ids: Iterable[str],
        since: datetime,
    ) -> AsyncIterator[tuple[Asset, ...]]:
        """Pages of timeline assets created at or after ``since`` showing at least one of the
        people, each asset once. Immich 3.2+ answers that in one search (``filter`` with
        ``personIds.any``); before, ``personIds`` means ALL listed people, so it is one search
        per person."""
        ids = sorted(set(person_ids))
        if not ids:
            return
        if (await self.known_version()).has_search_filter:
            query: dict[str, Any] = {
                "personIds": {"any": ids},
                "createdAt": {"gte": isoformat(since)},
                "visibility": {"eq": "timeline"},
            }
            async for page in self._cursor_pages(query):
                yield page
            return
        seen: set[str] = set()  # an asset showing two watched people comes back twice
        for person_id in ids:
            async for result in self.iter_search(created_after=since, person_ids=(person_id,)):
                fresh = tuple(a for a in result.assets if a.id not in seen)
                seen.update(a.id for a in fresh)
                if fresh:
                    yield fresh

    async def new_assets(
        self,
        after: datetime,
        before: datetime,
        asset_type: str | None = None,
        *,
        changed: tuple[datetime | None, datetime | None] = (None, None),
        readable_only: bool = True,
        with_people: bool = True,
    ) -> AsyncIterator[tuple[Asset, ...]]:
        """Pages of timeline assets created in [after, before] (of one type, when given) and,
        where ``changed`` bounds it, last changed in that range. ``readable_only``: only those
        whose files Immich has read (``withExif``); False also returns the others, without
        exif. ``with_people=False`` for a count by id (half the bytes)."""
        async for result in self.iter_search(
            created_after=after,
            created_before=before,
            asset_type=asset_type,
            with_people=with_people,
            with_exif=readable_only,
            updated_after=changed[0],
            updated_before=changed[1],
        ):
            yield result.assets

    async def _cursor_pages(self, query: Mapping[str, Any]) -> AsyncIterator[tuple[Asset, ...]]:
        cursor: str | None = None
        for _ in range(MAX_SEARCH_PAGES):
            result = await self.search_metadata_filter(
                filter=query, cursor=cursor, size=SEARCH_PAGE_SIZE
            )
            yield result.assets
            if not result.next_page:
                return
            cursor = result.next_page
        log.warning(
            "search stopped after %d pages; the rest waits for the next poll", MAX_SEARCH_PAGES
        )

    # -- assets ---------------------------------------------------------------------------

    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]:
        """The picture of an asset and its content type (``preview`` is a JPEG)."""
        if size not in THUMBNAIL_SIZES:
            raise ValueError(f"thumbnail size must be one of {sorted(THUMBNAIL_SIZES)}")
        answer = await self._io.request(
            "GET",
            "/assets/{id}/thumbnail",
            path={"id": asset_id},
            params={"size": size},
            accept="image/*",
        )
        return answer.body, answer.content_type or "application/octet-stream"

    async def upload_asset(
        self,
        filename: str,
        data: bytes,
        *,
        file_created_at: datetime,
        file_modified_at: datetime,
        content_type: str = "application/octet-stream",
        device_id: str = "immich-discord-sidecar",
    ) -> UploadResult:
        """Upload one file; ``duplicate`` when Immich already had it (same checksum)."""
        if self._server_version is None:
            await self.version()
        fields = {
            "fileCreatedAt": isoformat(file_created_at),
            "fileModifiedAt": isoformat(file_modified_at),
        }
        if self._server_version is not None and self._server_version.major < 3:
            # 2.x requires them; 3.x dropped both.
            fields["deviceAssetId"] = f"{device_id}-{filename}-{len(data)}"
            fields["deviceId"] = device_id

        def parse(body: Any) -> UploadResult:
            answer = require_dict(body, "body")
            status = answer["status"]
            if status not in ("created", "duplicate", "replaced"):
                raise ShapeError(f"unknown upload status {shorten(str(status), 40)!r}")
            return UploadResult(id=str(answer["id"]), duplicate=status == "duplicate")

        return await self._io.call_json(
            "POST",
            "/assets",
            parse,
            form=fields,
            files={"assetData": (filename, data, content_type)},
        )

    async def set_description(self, asset_id: str, text: str) -> None:
        """Set an asset's description (upload itself takes none in either version)."""
        await self._io.request(
            "PUT", "/assets/{id}", path={"id": asset_id}, json_body={"description": text}
        )

    async def set_favourite(self, asset_ids: Sequence[str], favourite: bool = True) -> None:
        """Mark assets as favourites (bulk update: 204). Immich lets only the assets' owner do
        it: another user's asset answers 400 "Not found or no asset.update access"."""
        await self._io.request(
            "PUT", "/assets", json_body={"ids": list(asset_ids), "isFavorite": favourite}
        )

    async def list_albums(self) -> list[Album]:
        """The albums the key's user owns or that are shared with them (without assets)."""

        def parse(data: Any) -> list[Album]:
            return [Album.from_dict(require_dict(a, "album")) for a in require_list(data, "body")]

        return await self._io.call_json("GET", "/albums", parse)

    async def add_to_album(self, album_id: str, asset_ids: Sequence[str]) -> list[dict[str, Any]]:
        """Add assets to an album; one ``{id, success, error?}`` per asset id."""

        def parse(data: Any) -> list[dict[str, Any]]:
            results = [require_dict(r, "result") for r in require_list(data, "body")]
            for result in results:
                if "id" not in result or not isinstance(result.get("success"), bool):
                    raise ShapeError("a result lacks id or success")
            return results

        return await self._io.call_json(
            "PUT",
            "/albums/{id}/assets",
            parse,
            path={"id": album_id},
            json_body={"ids": list(asset_ids)},
        )
