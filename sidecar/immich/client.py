"""The Immich API client: what the sidecar asks Immich, in its own words.

Works with Immich 2.x and 3.x and keeps every difference between them here: it learns the
server version once, and its intent-level methods (``assets_of_people``, ``new_assets``,
``upload_asset``, ...) pick the form that version understands. Sending, retries, size caps,
metrics and error mapping are the transport's (``sidecar.immich.transport``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import date, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from sidecar.config.model import Secret
from sidecar.immich.errors import (
    shorten,
)
from sidecar.immich.models import (
    Album,
    AlbumSummary,
    Asset,
    BucketAsset,
    Memory,
    Person,
    SearchPage,
    ServerVersion,
    UploadResult,
    parse_time,
)
from sidecar.immich.paging import Bounds, lossless_pages
from sidecar.immich.permissions import FEATURES, UPLOAD, UPLOAD_ALBUM, WATCHING, permissions_for
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

T = TypeVar("T")


# What each feature needs is said once, in sidecar.immich.permissions; these names remain for
# callers and the contract test (every name must exist in the specs' Permission enum).
POLL_PERMISSIONS = WATCHING.permissions
UPLOAD_PERMISSIONS = UPLOAD.permissions + UPLOAD_ALBUM.permissions
REQUIRED_PERMISSIONS = permissions_for(FEATURES)

THUMBNAIL_SIZES = frozenset({"thumbnail", "preview", "fullsize", "original"})
SEARCH_PAGE_SIZE = 1000  # Immich's maximum for search/metadata
MAX_SEARCH_PAGES = 10_000  # hard stop for a server that keeps answering "next page"
MAX_PEOPLE_PAGES = 1_000
MAX_ERROR_BODY = 64 * 1024  # bytes of an error body read for its message
MAX_BODY = 256 * 1024 * 1024  # bytes of a successful body (an original video can be large)


class ImmichClient:
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
    ) -> SearchPage:
        """One page of timeline assets (flat 2.x/3.x form). ``person_ids`` means ALL of them.
        Every bound includes its own moment."""
        _check_size(size)
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
        if person_ids:
            body["personIds"] = list(person_ids)
        if asset_type is not None:
            body["type"] = asset_type
        if page is not None:
            if not page.isdigit():
                raise ValueError(f"search page must be a page number, not {page[:40]!r}")
            body["page"] = int(page)
        return await self._io.call_json(
            "POST", "/search/metadata", lambda d: _search_page(d, cursor_form=False), json_body=body
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
        _check_size(size)
        body: dict[str, Any] = {
            "filter": dict(filter),
            "size": size,
            "withPeople": with_people,
            "withExif": with_exif,
        }
        if cursor is not None:
            body["cursor"] = cursor
        return await self._io.call_json(
            "POST", "/search/metadata", lambda d: _search_page(d, cursor_form=True), json_body=body
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
    ) -> AsyncIterator[SearchPage]:
        """Every asset of a flat search once, a page at a time (bounded). Not by offset: before
        3.1 Immich breaks no ties in its order, and offsets would skip some (see ``paging``)."""

        async def fetch(bounds: Bounds, page: int | None) -> SearchPage:
            return await self.search_metadata(
                created_after=bounds.created_after,
                created_before=bounds.created_before,
                taken_after=bounds.taken_after,
                taken_before=bounds.taken_before,
                person_ids=person_ids,
                asset_type=asset_type,
                page=None if page is None else str(page),
                size=size,
                with_people=with_people,
                with_exif=with_exif,
            )

        window = Bounds(created_after=created_after, created_before=created_before)
        async for assets in lossless_pages(fetch, window, max_requests=MAX_SEARCH_PAGES):
            yield SearchPage(assets=assets, next_page=None)

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
    ) -> AsyncIterator[tuple[Asset, ...]]:
        """Pages of timeline assets created in [after, before] (of one type, when given)."""
        async for result in self.iter_search(
            created_after=after,
            created_before=before,
            asset_type=asset_type,
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

        version = self._server_version or await self.version()
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

        _check_size(size)
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

    # -- album additions ------------------------------------------------------------------
    #
    # Which endpoints show other users' assets of a shared album (specs 2.7.3 and 3.0.3, and
    # measured on real 2.7.5 and 3.1.0 servers with a second user, a shared album and partner
    # sharing):
    #
    # - ``GET /albums``: 2.x takes ``shared`` (none: the albums the key's user owns;
    #   ``shared=true``: owned-and-shared plus shared-with-me; an album shared with you is only
    #   in the second list). 3.x takes ``isOwned``/``isShared``/``id``/``name`` and, with none,
    #   lists every album you belong to (``shared`` is not in its spec and is ignored).
    # - ``GET /timeline/buckets?albumId=`` and ``GET /timeline/bucket?albumId=&timeBucket=``
    #   (permission ``asset.read``, access checked through the album): every member, whoever
    #   owns it, on both versions; the bucket's columns include ``id`` and ``ownerId``.
    # - ``GET /assets/{id}`` and its thumbnail: readable through a shared album on both.
    # - ``POST /search/metadata`` with ``albumIds``: every member on 3.x, but on 2.x only the
    #   key owner's assets (and those of partners shown in the timeline); the 2.x answer is
    #   therefore completed with ``GET /assets/{id}``. ``search/random`` never widens to albums.
    # - ``GET /albums/{id}``: 2.x lists every member (with ``ownerId``) unless
    #   ``withoutAssets=true`` (far too heavy for a 20,000-photo album); 3.x's
    #   AlbumResponseDto has no ``assets`` at all. Not used for detection.

    async def album_summaries(self, *, shared: bool | None = None) -> list[AlbumSummary]:
        """Albums with the counters that tell whether they changed. ``shared=True`` asks a 2.x
        server for its shared list (see above); on 3.x leave it None: one call lists all."""

        def parse(data: Any) -> list[AlbumSummary]:
            return [
                AlbumSummary.from_dict(require_dict(a, "album")) for a in require_list(data, "body")
            ]

        params = {"shared": "true"} if shared else None
        return await self._io.call_json("GET", "/albums", parse, params=params)

    async def album_buckets(self, album_id: str) -> dict[str, int]:
        """Members of an album per month: ``{timeBucket: count}`` (every owner's assets)."""

        def parse(data: Any) -> dict[str, int]:
            buckets: dict[str, int] = {}
            for entry in require_list(data, "body"):
                bucket = require_dict(entry, "bucket")
                buckets[str(bucket["timeBucket"])] = require_int(bucket["count"], "count")
            return buckets

        return await self._io.call_json(
            "GET", "/timeline/buckets", parse, params={"albumId": album_id}
        )

    async def album_bucket(self, album_id: str, time_bucket: str) -> list[BucketAsset]:
        """The members of one month of an album, from the compact columnar answer."""

        def parse(data: Any) -> list[BucketAsset]:
            body = require_dict(data, "body")
            columns = {
                name: require_list(body[name], name)
                for name in ("id", "ownerId", "fileCreatedAt", "isImage", "visibility", "isTrashed")
            }
            sizes = {len(values) for values in columns.values()}
            if len(sizes) != 1:
                raise ShapeError("the bucket's columns differ in length")
            return [
                BucketAsset(
                    id=str(asset_id),
                    owner_id=str(owner),
                    taken_at=parse_time(str(taken)),
                    is_image=bool(image),
                    visibility=str(visibility),
                    is_trashed=bool(trashed),
                )
                for asset_id, owner, taken, image, visibility, trashed in zip(
                    columns["id"],
                    columns["ownerId"],
                    columns["fileCreatedAt"],
                    columns["isImage"],
                    columns["visibility"],
                    columns["isTrashed"],
                    strict=True,
                )
            ]

        return await self._io.call_json(
            "GET",
            "/timeline/bucket",
            parse,
            params={"albumId": album_id, "timeBucket": time_bucket},
        )

    async def asset(self, asset_id: str) -> Asset:
        """One asset with its people and exif (readable through a shared album)."""
        return await self._io.call_json(
            "GET",
            "/assets/{id}",
            lambda d: Asset.from_dict(require_dict(d, "body")),
            path={"id": asset_id},
        )

    async def album_assets_taken_between(
        self,
        album_id: str,
        taken_after: datetime,
        taken_before: datetime,
    ) -> list[Asset]:
        """Timeline members of an album taken in [after, before], people and exif inline.
        On 2.x only the key owner's (and timeline partners') assets come back (see above)."""
        found: list[Asset] = []
        page: int | None = None
        for _ in range(MAX_SEARCH_PAGES):
            body: dict[str, Any] = {
                "albumIds": [album_id],
                "takenAfter": isoformat(taken_after),
                "takenBefore": isoformat(taken_before),
                "visibility": "timeline",
                "withPeople": True,
                "withExif": True,
                "size": 1000,
            }
            if page is not None:
                body["page"] = page
            result = await self._io.call_json(
                "POST",
                "/search/metadata",
                lambda d: _search_page(d, cursor_form=False),
                json_body=body,
            )
            found.extend(result.assets)
            if result.next_page is None:
                break
            page = int(result.next_page)
        return found


def _check_size(size: int) -> None:
    if not 1 <= size <= 1000:
        raise ValueError("search page size must be between 1 and 1000")


def _search_page(data: Any, *, cursor_form: bool) -> SearchPage:
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
