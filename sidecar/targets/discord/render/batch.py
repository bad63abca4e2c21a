"""Which Discord messages a batch of deliveries becomes: one per chunk of assets (as many as
``max_per_message`` allows), one summary for a burst over ``summary_over``, one for a scheduled
post; who each may ping, and its nonce (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, Batch, Delivery, PostRef
from sidecar.targets.discord.render.embeds import asset_embeds, post_embeds, summary_embeds
from sidecar.targets.discord.render.message import (
    CONTENT_LIMIT,
    DISCORD_MAX_EMBEDS,
    NO_MENTIONS,
    RenderedMessage,
    Thumbnail,
    allowed_mentions,
    message_nonce,
)
from sidecar.targets.discord.render.text import (
    mention_prefix,
    message_text,
    summary_words,
    truncate,
)
from sidecar.targets.links import album_link

SUMMARY_PREVIEWS = 4


def render_batch(
    batch: Batch, external_url: str, thumbnails: Mapping[str, Thumbnail]
) -> list[RenderedMessage]:
    """The messages for one batch: one embed per asset, or one summary for a large burst.

    ``thumbnails`` maps asset ids to their pictures; an asset without one gets an embed
    without a picture.
    """
    if not batch.deliveries:
        return []
    post = _batch_post(batch)
    if post is not None:
        return [post_message(batch, post, external_url, thumbnails)]
    if is_summary(batch):
        return [_summary_message(batch, external_url, thumbnails)]
    per_message = max(1, min(batch.batching.max_per_message, DISCORD_MAX_EMBEDS))
    deliveries = batch.deliveries
    return [
        _assets_message(batch, deliveries[start : start + per_message], external_url, thumbnails)
        for start in range(0, len(deliveries), per_message)
    ]


def is_summary(batch: Batch) -> bool:
    return len(batch.deliveries) > batch.batching.summary_over


def assets_to_picture(batch: Batch) -> list[Asset]:
    """The assets whose thumbnails the rendered messages will show (fetch these first)."""
    assets = [d.asset for d in batch.deliveries]
    if _batch_post(batch) is not None:
        return assets[:DISCORD_MAX_EMBEDS]
    return assets[:SUMMARY_PREVIEWS] if is_summary(batch) else assets


def member_users(batch: Batch, assets: Sequence[Asset]) -> tuple[int, ...]:
    """The linked members of the people in these assets (mention_members), each once."""
    people = {p.id for a in assets for p in a.people}
    return tuple(dict.fromkeys(u for person, u in batch.member_mentions if person in people))


def _batch_album(batch: Batch) -> AlbumRef | None:
    """The album of an album rule's batch (the dispatcher groups one album per batch)."""
    return batch.deliveries[0].album if batch.deliveries else None


def _batch_post(batch: Batch) -> PostRef | None:
    """The message of a scheduled post's batch (the dispatcher groups one message a batch)."""
    return batch.deliveries[0].post if batch.deliveries else None


def _assets_message(
    batch: Batch,
    chunk: Sequence[Delivery],
    external_url: str,
    thumbnails: Mapping[str, Thumbnail],
) -> RenderedMessage:
    """One message of a chunk of the batch: its summary line, then an embed per asset."""
    embeds, files = asset_embeds(batch, chunk, external_url, thumbnails)
    ids = tuple(d.id for d in chunk)
    assets = [d.asset for d in chunk]
    users = member_users(batch, assets)
    nonce = message_nonce(batch.rule, batch.target, ids)
    content = mention_prefix(batch.mention_roles, users) + message_text(
        batch, chunk, external_url, nonce
    )
    return RenderedMessage(
        content=truncate(content, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=allowed_mentions(batch.mention_roles, users),
        delivery_ids=ids,
        nonce=nonce,
    )


def post_message(
    batch: Batch, post: PostRef, external_url: str, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """One scheduled post message: its headline as the content (what a notification shows),
    and its pictures as one gallery (embeds that share a url) under a link to Immich. The
    headline is said once: the embed's title is the link, not the headline again. Mentions are
    off: a post never pings anyone."""
    link = post.link or f"{external_url.rstrip('/')}/photos"
    ids = tuple(d.id for d in batch.deliveries)
    nonce = message_nonce(batch.rule, batch.target, ids)
    text = message_text(batch, batch.deliveries, external_url, nonce)
    embeds, files = post_embeds(
        batch,
        external_url,
        link,
        [d.asset for d in batch.deliveries[:DISCORD_MAX_EMBEDS]],
        thumbnails,
    )
    return RenderedMessage(
        content=truncate(text, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=NO_MENTIONS,
        delivery_ids=ids,
        nonce=nonce,
    )


def _summary_message(
    batch: Batch, external_url: str, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """A large burst as one message: its summary, the first pictures, a link to see them all."""
    assets = [d.asset for d in batch.deliveries]
    users = member_users(batch, assets)
    album = _batch_album(batch)
    ids = tuple(d.id for d in batch.deliveries)
    nonce = message_nonce(batch.rule, batch.target, ids)
    text = message_text(batch, batch.deliveries, external_url, nonce)
    link = (
        f"{external_url.rstrip('/')}/photos"
        if album is None
        else album_link(external_url, album.id)
    )
    embeds, files = summary_embeds(
        summary_words(batch, external_url, album), link, assets[:SUMMARY_PREVIEWS], thumbnails
    )
    return RenderedMessage(
        content=truncate(mention_prefix(batch.mention_roles, users) + text, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=allowed_mentions(batch.mention_roles, users),
        delivery_ids=ids,
        nonce=nonce,
    )
