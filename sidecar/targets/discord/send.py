"""What both Discord sinks do with a batch: fetch its pictures from Immich (the sinks' one
Immich call), render its messages, send them one by one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable

from sidecar.immich.models import Asset
from sidecar.ops.logging import log_fields
from sidecar.targets.base import (
    Batch,
    DeliveryError,
    MessageRef,
    SentMessages,
    TemporaryDeliveryError,
    ThumbnailSource,
)
from sidecar.targets.discord.render.batch import assets_to_picture, render_batch
from sidecar.targets.discord.render.message import RenderedMessage, Thumbnail

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
) -> dict[str, Thumbnail]:
    """Preview pictures by asset id. An asset Immich no longer has is left out. Immich being
    unreachable is a temporary failure of the whole batch (better late than without pictures)
    for the first ``PICTURES_REQUIRED_ATTEMPTS`` attempts, then that picture is left out."""
    pictures: dict[str, Thumbnail] = {}
    for asset in assets:
        try:
            data, content_type = await source.asset_thumbnail(asset.id, size="preview")
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


def batch_attempts(batch: Batch) -> int:
    """How many times this batch already failed."""
    return max((d.attempts for d in batch.deliveries), default=0)


async def send_rendered(
    batch: Batch,
    source: ThumbnailSource,
    external_url: str,
    send: Callable[[RenderedMessage], Awaitable[MessageRef | None]],
) -> SentMessages:
    """Fetch the batch's pictures, render its messages and ``send`` each in turn; returns the
    message that carried each delivery (where ``send`` knew it). A failure carries the ids of
    the deliveries whose messages were already accepted, and their messages."""
    sent: list[int] = []
    messages: dict[int, MessageRef] = {}
    try:
        pictures = await fetch_thumbnails(
            source, assets_to_picture(batch), attempts=batch_attempts(batch)
        )
        for message in render_batch(batch, external_url, pictures):
            ref = await send(message)
            sent.extend(message.delivery_ids)
            if ref is not None:
                messages.update(dict.fromkeys(message.delivery_ids, ref))
    except DeliveryError as error:
        error.sent_ids = tuple(sent)
        error.messages = messages
        raise
    return messages
