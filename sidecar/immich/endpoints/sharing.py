"""What the sidecar asks Immich to share with people outside it: a shared link over a message's
assets or an album (``POST /shared-links``), and a video's playable file to attach
(``GET /assets/{id}/video/playback``); part of ``ImmichClient``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sidecar.immich.errors import ImmichTooLargeError
from sidecar.immich.models import SharedLink, VideoFile, VideoTooLarge
from sidecar.immich.transport import Transport, isoformat, require_dict


class SharingEndpoints:
    """Shared-link and video endpoints of ``ImmichClient`` (which provides the transport)."""

    _io: Transport

    async def create_shared_link(
        self,
        *,
        asset_ids: Sequence[str] = (),
        album_id: str | None = None,
        expires_at: datetime | None,
        allow_download: bool,
        show_metadata: bool,
        description: str,
    ) -> SharedLink:
        """A new shared link (``sharedLink.create``): an ``ALBUM`` link when ``album_id`` is
        given, else an ``INDIVIDUAL`` link over ``asset_ids``. Never retried: a retry after a
        lost answer would make a second link."""
        body: dict[str, Any] = (
            {"type": "ALBUM", "albumId": album_id}
            if album_id is not None
            else {"type": "INDIVIDUAL", "assetIds": list(asset_ids)}
        )
        body.update(
            {
                "expiresAt": isoformat(expires_at) if expires_at is not None else None,
                "allowDownload": allow_download,
                "showMetadata": show_metadata,
                "description": description,
            }
        )
        return await self._io.call_json(
            "POST",
            "/shared-links",
            lambda d: SharedLink.from_dict(require_dict(d, "body")),
            json_body=body,
            retry=False,
        )

    async def video_playback(self, asset_id: str, max_bytes: int) -> VideoFile | VideoTooLarge:
        """A video's playable file, or how large it is when over ``max_bytes`` (read no
        further than that: a 2 GB film is never downloaded to learn it is too large)."""
        try:
            answer = await self._io.request(
                "GET",
                "/assets/{id}/video/playback",
                path={"id": asset_id},
                accept="video/*",
                max_body=max_bytes,
            )
        except ImmichTooLargeError as err:
            return VideoTooLarge(err.size, max_bytes)
        return VideoFile(answer.body, answer.content_type or "video/mp4")
