"""Fetch the pictures a rendered batch shows, from Immich (the one Immich call of the sinks)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol

from sidecar.delivery import TemporaryDeliveryError
from sidecar.immich.models import Asset
from sidecar.render import Thumbnail

log = logging.getLogger(__name__)

# Statuses meaning "this asset has no picture (any more)": send the message without one.
_NO_PICTURE_STATUSES = frozenset({400, 404})


class ThumbnailSource(Protocol):
    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]: ...


def _status_of(error: Exception) -> int | None:
    status = getattr(error, "status", None)
    if status is None:
        status = getattr(error, "status_code", None)
    return status if isinstance(status, int) else None


async def fetch_thumbnails(
    source: ThumbnailSource, assets: Iterable[Asset]
) -> dict[str, Thumbnail]:
    """Preview pictures by asset id. An asset Immich no longer has is left out; Immich being
    unreachable is a temporary failure of the whole batch (better late than without pictures)."""
    pictures: dict[str, Thumbnail] = {}
    for asset in assets:
        try:
            data, content_type = await source.asset_thumbnail(asset.id, size="preview")
        except Exception as error:
            if _status_of(error) in _NO_PICTURE_STATUSES:
                log.info("asset %s has no preview in Immich; sending without a picture", asset.id)
                continue
            raise TemporaryDeliveryError(
                "immich_unavailable",
                f"could not fetch a preview from Immich ({type(error).__name__})",
            ) from error
        pictures[asset.id] = Thumbnail(data, content_type)
    return pictures
