"""Immich shared links and video playback for the fake Immich (``tests.fakes.fake_immich``), as
the 2.7.3 and 3.0.3 specs and Immich's services describe them.

- ``POST /api/shared-links`` (``sharedLink.create``) takes ``{type: "INDIVIDUAL", assetIds}`` or
  ``{type: "ALBUM", albumId}`` with ``expiresAt``, ``allowDownload`` and ``showMetadata``
  (both default true; ``showMetadata: false`` turns downloads off too, as Immich does),
  ``description``, ``password``, ``slug``; it answers 201 with the link and its ``key``
  (50 random bytes, base64url). Sharing an asset needs Immich's ``asset.share`` access (its
  owner or a partner), an album ``album.share`` (its owner): else 400 "Not found or no ...
  access", as Immich's access check answers.
- ``GET /api/shared-links`` (``sharedLink.read``) lists the key user's links;
  ``DELETE /api/shared-links/{id}`` (``sharedLink.delete``) revokes one (204).
- ``GET /api/shared-links/me?key=KEY`` needs no API key: it is what the web page at
  ``EXTERNAL_URL/share/KEY`` asks, so a family member without an account sees the link's
  assets; an expired, revoked or unknown key answers 401 "Invalid share key".
- ``GET /api/assets/{id}/video/playback`` (``asset.view``) serves the playable video (the
  transcoded mp4 where the server transcodes) with its ``Content-Length``; an image answers
  400 "Asset is not a video".
"""

from __future__ import annotations

import base64
import functools
import secrets
import sys
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.fake_immich import FakeImmich

Json = Any
PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("POST", "/api/shared-links"): "sharedLink.create",
    ("GET", "/api/shared-links"): "sharedLink.read",
    ("DELETE", "/api/shared-links/{id}"): "sharedLink.delete",
    ("GET", "/api/assets/{id}/video/playback"): "asset.view",
}
LINK_TYPES = ("ALBUM", "INDIVIDUAL")
_CREATE_FIELDS = frozenset(
    {
        "type", "assetIds", "albumId", "description", "password", "slug", "expiresAt",
        "allowUpload", "allowDownload", "showMetadata",
    }
)  # fmt: skip
DEFAULT_VIDEO_BYTES = 200 * 1024  # a 12 s clip at a phone's preview bitrate
MP4_HEADER = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


@dataclass
class SharedLink:
    id: str
    key: str
    type: str
    owner_id: str
    asset_ids: list[str]
    album_id: str | None
    expires_at: datetime | None
    allow_download: bool
    show_metadata: bool
    description: str | None
    created_at: datetime
    password: str | None = None
    slug: str | None = None
    allow_upload: bool = False
    opened: list[datetime] = field(default_factory=list)  # each GET /shared-links/me


@functools.lru_cache(maxsize=64)
def video_bytes(asset_id: str, size: int) -> bytes:
    """The playback file of a video asset: an mp4 header, then ``size`` bytes in all."""
    filler = asset_id.encode() or b"video"
    return (MP4_HEADER + filler * (size // len(filler) + 1))[:size]


class FakeSharedLinks:
    """Shared links of one fake Immich, and the playback of its videos."""

    def __init__(self, fake: FakeImmich) -> None:
        self._fake = fake
        self.links: dict[str, SharedLink] = {}
        # The fake's own module (also when it runs as __main__): its errors and helpers.
        self._fi: Any = sys.modules[type(fake).__module__]

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/shared-links", self._create)
        app.router.add_get("/api/shared-links", self._list)
        app.router.add_get("/api/shared-links/me", self._me)
        app.router.add_delete("/api/shared-links/{id}", self._delete)
        app.router.add_get("/api/assets/{id}/video/playback", self._playback)

    # -- for tests

    def by_key(self, key: str) -> SharedLink | None:
        return next((link for link in self.links.values() if link.key == key), None)

    def revoke(self, link_id: str) -> None:
        """As "Delete link" in Immich's Sharing > Shared links page."""
        del self.links[link_id]

    # -- endpoints

    async def _create(self, request: web.Request) -> web.Response:

        body = await self._fi._json_body(request)
        if not isinstance(body, dict):
            raise self._fi._ApiError(400, ["body must be a JSON object"])
        body = {k: v for k, v in body.items() if k in _CREATE_FIELDS}
        kind = body.get("type")
        if kind not in LINK_TYPES:
            raise self._fi._ApiError(
                400, [f"type must be one of the following values: {', '.join(LINK_TYPES)}"]
            )
        expires = body.get("expiresAt")
        expires_at = None if expires is None else self._fi._parse_time(expires, "expiresAt")
        asset_ids, album_id = self._shared_content(kind, body)
        link = self.add(
            asset_ids,
            album_id=album_id,
            expires_at=expires_at,
            allow_download=body.get("allowDownload", True) is not False,
            show_metadata=body.get("showMetadata", True) is not False,
            description=body.get("description"),
        )
        link.password, link.slug = body.get("password"), body.get("slug")
        link.allow_upload = bool(body.get("allowUpload", False))
        return web.json_response(self.link_json(link), status=201)

    def add(
        self,
        asset_ids: list[str],
        *,
        album_id: str | None = None,
        expires_at: datetime | None = None,
        allow_download: bool = True,
        show_metadata: bool = True,
        description: str | None = None,
    ) -> SharedLink:
        """A link as ``POST /shared-links`` makes it (for the request's user)."""
        link = SharedLink(
            id=str(uuid.uuid4()),
            key=base64.urlsafe_b64encode(secrets.token_bytes(50)).decode().rstrip("="),
            type="ALBUM" if album_id is not None else "INDIVIDUAL",
            owner_id=self._fake.caller(),
            asset_ids=list(asset_ids),
            album_id=album_id,
            expires_at=expires_at,
            allow_download=show_metadata and allow_download,  # no metadata: no download either
            show_metadata=show_metadata,
            description=description,
            created_at=self._fi._now(),
        )
        self.links[link.id] = link
        return link

    def _shared_content(self, kind: Json, body: dict[str, Json]) -> tuple[list[str], str | None]:

        fake = self._fake
        if kind == "ALBUM":
            album_id = self._fi._require_uuid(body.get("albumId"), "albumId")
            album = fake.album_of(album_id)
            if album is None or album.owner_id != fake.caller():
                raise self._fi._ApiError(400, "Not found or no album.share access")
            return [], album_id
        ids = body.get("assetIds")
        if not isinstance(ids, list) or not ids:
            raise self._fi._ApiError(400, "Invalid assetIds")
        for asset_id in ids:
            self._fi._require_uuid(asset_id, "assetIds")
            if not fake.may_share(asset_id):
                raise self._fi._ApiError(400, "Not found or no asset.share access")
        return [str(a) for a in ids], None

    async def _list(self, request: web.Request) -> web.Response:
        caller = self._fake.caller()
        return web.json_response(
            [self.link_json(link) for link in self.links.values() if link.owner_id == caller]
        )

    async def _delete(self, request: web.Request) -> web.Response:

        link = self.links.get(request.match_info["id"])
        if link is None or link.owner_id != self._fake.caller():
            raise self._fi._ApiError(400, "Not found or no sharedLink.delete access")
        del self.links[link.id]
        return web.Response(status=204)

    async def _me(self, request: web.Request) -> web.Response:

        link = self.by_key(request.query.get("key", ""))
        now = self._fi._now()
        if link is None or (link.expires_at is not None and link.expires_at <= now):
            raise self._fi._ApiError(401, "Invalid share key")
        link.opened.append(now)
        return web.json_response(self.link_json(link))

    async def _playback(self, request: web.Request) -> web.StreamResponse:

        asset = self._fake.find_asset(request.match_info["id"], "asset.view")
        if asset.type != "VIDEO":
            raise self._fi._ApiError(400, "Asset is not a video")
        size = asset.video_size if asset.video_size is not None else DEFAULT_VIDEO_BYTES
        return web.Response(body=video_bytes(asset.id, size), content_type="video/mp4")

    # -- shapes

    def link_json(self, link: SharedLink) -> dict[str, Json]:

        fake = self._fake
        data: dict[str, Json] = {
            "id": link.id,
            "key": link.key,
            "type": link.type,
            "userId": fake.real_user_id(link.owner_id),
            "description": link.description,
            "password": link.password,
            "slug": link.slug,
            "createdAt": self._fi._iso(link.created_at),
            "expiresAt": None if link.expires_at is None else self._fi._iso(link.expires_at),
            "allowUpload": link.allow_upload,
            "allowDownload": link.allow_download,
            "showMetadata": link.show_metadata,
            "assets": [fake.shared_asset_json(a, link.show_metadata) for a in link.asset_ids],
        }
        if not fake.is_v3:
            data["token"] = None
        if link.album_id is not None:
            data["album"] = fake.album_json(link.album_id)
        return data
