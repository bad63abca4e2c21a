"""The pictures and videos a Discord message shows, fetched from Immich (the Discord sinks' one
source of Immich bytes): each asset's preview, and for a video shown in a gallery its playable
file when it is small enough to attach (``video: {attach, max_mb}``), else why not."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable

from sidecar.immich.models import Asset, VideoFile
from sidecar.messages.render import ENGLISH, Words
from sidecar.ops.logging import log_fields
from sidecar.targets.base import MediaSource, TemporaryDeliveryError, ThumbnailSource
from sidecar.targets.discord.render.gallery import too_large_note
from sidecar.targets.discord.render.message import MESSAGE_BYTES, Media, Thumbnail
from sidecar.targets.presentation import VideoOptions

log = logging.getLogger(__name__)

# Statuses meaning "this asset has no picture (any more)": send the message without one.
_NO_PICTURE_STATUSES = frozenset({400, 404})
# After this many failed attempts of a batch, a picture Immich cannot give is left out: a
# message with a link is better than none, and one flaky fetch must not hold up a large batch.
PICTURES_REQUIRED_ATTEMPTS = 3


def _status_of(error: Exception) -> int | None:
    status = getattr(error, "status", None)
    if status is None:
        status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


async def fetch_thumbnails(
    source: ThumbnailSource,
    assets: Iterable[Asset],
    *,
    attempts: int = 0,
    size: str = "preview",
) -> dict[str, Thumbnail]:
    """Pictures by asset id (``preview`` JPEGs; ``thumbnail`` for a message Discord found too
    large). An asset Immich no longer has is left out. Immich being unreachable is a temporary
    failure of the whole batch (better late than without pictures) for the first
    ``PICTURES_REQUIRED_ATTEMPTS`` attempts, then that picture is left out."""
    pictures: dict[str, Thumbnail] = {}
    for asset in assets:
        try:
            data, content_type = await source.asset_thumbnail(asset.id, size=size)
        except Exception as error:
            if _status_of(error) in _NO_PICTURE_STATUSES:
                log.info(
                    "asset %s has no preview in Immich; sending without a picture",
                    asset.id,
                    extra=log_fields(asset_id=asset.id),
                )
                continue
            if attempts >= PICTURES_REQUIRED_ATTEMPTS:
                log.warning(
                    "asset %s: no preview from Immich (%s); sending without a picture",
                    asset.id,
                    type(error).__name__,
                    extra=log_fields(asset_id=asset.id),
                )
                continue
            raise TemporaryDeliveryError(
                "immich_unavailable",
                f"could not fetch a preview from Immich ({type(error).__name__})",
            ) from error
        pictures[asset.id] = Thumbnail(data, content_type)
    return pictures


async def fetch_media(
    source: MediaSource,
    assets: Iterable[Asset],
    video: VideoOptions,
    *,
    attempts: int = 0,
    videos: Collection[str] | None = None,
    words: Words = ENGLISH,
) -> dict[str, Media]:
    """Each asset's preview, and each video's playable file when ``video.attach`` and it is
    at most ``video.max_mb`` (and fits a message); a video that does not keeps its preview and
    says why. A video Immich cannot give is shown by its preview: it never holds up a batch.
    ``videos``: the asset ids whose video may be attached (None: all; a summary shows only
    previews)."""
    assets = list(assets)
    pictures = await fetch_thumbnails(source, assets, attempts=attempts)
    media = {a.id: Media(picture=pictures.get(a.id)) for a in assets}
    if not video.attach:
        return media
    limit = min(video.max_bytes, MESSAGE_BYTES)
    for asset in assets:
        if asset.type != "VIDEO" or (videos is not None and asset.id not in videos):
            continue
        try:
            found = await source.video_playback(asset.id, limit)
        except Exception as error:  # the preview stands in for it
            log.info(
                "asset %s: no playable video from Immich (%s); sending its preview",
                asset.id,
                type(error).__name__,
                extra=log_fields(asset_id=asset.id),
            )
            continue
        if isinstance(found, VideoFile):
            media[asset.id] = Media(
                pictures.get(asset.id), Thumbnail(found.data, found.content_type)
            )
        else:
            media[asset.id] = Media(
                pictures.get(asset.id), refused=too_large_note(found.size, limit, words)
            )
    return media
