"""The Immich album endpoints: the albums an upload can go into and adding to one, and what
album rules use to notice additions, with what each version shows of other users' assets
(part of ``ImmichClient``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sidecar.immich.endpoints.search import MAX_SEARCH_PAGES, search_page
from sidecar.immich.models import (
    Album,
    AlbumSummary,
    Asset,
    BucketAsset,
    ServerVersion,
    parse_time,
)
from sidecar.immich.transport import (
    ShapeError,
    Transport,
    isoformat,
    require_dict,
    require_int,
    require_list,
)

log = logging.getLogger(__name__)


class AlbumEndpoints:
    """Album endpoints of ``ImmichClient`` (which provides the transport and the version)."""

    _io: Transport
    _server_version: ServerVersion | None

    # -- uploads into an album ------------------------------------------------------------

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
                lambda d: search_page(d, cursor_form=False),
                json_body=body,
            )
            found.extend(result.assets)
            if result.next_page is None:
                break
            page = int(result.next_page)
        return found
