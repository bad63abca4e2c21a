"""The Immich endpoints about one asset: read it, its picture, upload one, its description and
favourite flag (part of ``ImmichClient``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sidecar.immich.errors import shorten
from sidecar.immich.models import Asset, ServerVersion, UploadResult
from sidecar.immich.transport import ShapeError, Transport, isoformat, require_dict

THUMBNAIL_SIZES = frozenset({"thumbnail", "preview", "fullsize", "original"})


class AssetEndpoints:
    """Asset endpoints of ``ImmichClient`` (which provides the transport and the version)."""

    _io: Transport

    async def known_version(self) -> ServerVersion:
        raise NotImplementedError  # ImmichClient's: the version, asked once

    async def asset(self, asset_id: str) -> Asset:
        """One asset with its people and exif (readable through a shared album)."""
        return await self._io.call_json(
            "GET",
            "/assets/{id}",
            lambda d: Asset.from_dict(require_dict(d, "body")),
            path={"id": asset_id},
        )

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
        version = await self.known_version()
        fields = {
            "fileCreatedAt": isoformat(file_created_at),
            "fileModifiedAt": isoformat(file_modified_at),
        }
        if version.major < 3:
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
