"""Which Discord messages a batch of deliveries becomes: one per chunk of assets (as many as
``max_per_message`` allows), one summary for a burst over ``summary_over``, one for a scheduled
post (each a ``Draft``); who each may ping, and its nonce; and today's embeds layout of each
(pure). The gallery layout of a draft is ``render.gallery``'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, Batch, Delivery, PostRef
from sidecar.targets.discord.render.embeds import asset_embeds, post_embeds, summary_embeds
from sidecar.targets.discord.render.message import (
    CONTENT_LIMIT,
    DISCORD_MAX_EMBEDS,
    GALLERY_LIMIT,
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
from sidecar.targets.links import Links

SUMMARY_PREVIEWS = 4  # pictures of a summary laid out as embeds (one gallery card)
ASSETS, SUMMARY, POST = "assets", "summary", "post"


@dataclass(frozen=True)
class Draft:
    """One message of a batch before its layout: the deliveries it carries (marked sent with
    it) and the assets it pictures, in order."""

    kind: str  # ASSETS, SUMMARY or POST
    deliveries: tuple[Delivery, ...]
    shown: tuple[Asset, ...]

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(d.id for d in self.deliveries)

    @property
    def album(self) -> AlbumRef | None:
        """The album of an album rule's message (the dispatcher groups one album per batch)."""
        return self.deliveries[0].album if self.deliveries else None

    @property
    def post(self) -> PostRef | None:
        return self.deliveries[0].post if self.deliveries else None


def drafts(batch: Batch, *, gallery: bool = False) -> list[Draft]:
    """The messages of a batch: a scheduled post's one message, a large burst's one summary,
    else one message per chunk of ``max_per_message`` assets. A gallery shows up to 10
    pictures in a summary; embeds show 4 (one card)."""
    deliveries = batch.deliveries
    if not deliveries:
        return []
    if deliveries[0].post is not None:
        shown = tuple(d.asset for d in deliveries[:GALLERY_LIMIT])
        return [Draft(POST, deliveries, shown)]
    if is_summary(batch):
        previews = GALLERY_LIMIT if gallery else SUMMARY_PREVIEWS
        return [Draft(SUMMARY, deliveries, tuple(d.asset for d in deliveries[:previews]))]
    per_message = max(1, min(batch.batching.max_per_message, DISCORD_MAX_EMBEDS))
    chunks = [
        deliveries[start : start + per_message] for start in range(0, len(deliveries), per_message)
    ]
    return [Draft(ASSETS, chunk, tuple(d.asset for d in chunk)) for chunk in chunks]


def render_batch(
    batch: Batch, links: Links | str, thumbnails: Mapping[str, Thumbnail]
) -> list[RenderedMessage]:
    """The messages for one batch in the embeds layout: one embed per asset, or one summary
    for a large burst. ``links`` (or the external URL, for links into Immich): where the
    links go. ``thumbnails`` maps asset ids to their pictures; an asset without one gets an
    embed without a picture."""
    where = links if isinstance(links, Links) else Links("immich", links)
    return [render_embeds(batch, draft, where, thumbnails) for draft in drafts(batch)]


def render_embeds(
    batch: Batch, draft: Draft, links: Links, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """One draft laid out as embeds (today's layout)."""
    if draft.kind == POST and draft.post is not None:
        return post_message(batch, draft, draft.post, links, thumbnails)
    if draft.kind == SUMMARY:
        return _summary_message(batch, draft, links, thumbnails)
    return _assets_message(batch, draft, links, thumbnails)


def is_summary(batch: Batch) -> bool:
    return len(batch.deliveries) > batch.batching.summary_over


def assets_to_picture(batch: Batch, *, gallery: bool = False) -> list[Asset]:
    """The assets whose thumbnails the rendered messages will show (fetch these first)."""
    return [asset for draft in drafts(batch, gallery=gallery) for asset in draft.shown]


def member_users(batch: Batch, assets: Sequence[Asset]) -> tuple[int, ...]:
    """The linked members of the people in these assets (mention_members), each once."""
    people = {p.id for a in assets for p in a.people}
    return tuple(dict.fromkeys(u for person, u in batch.member_mentions if person in people))


def headline(batch: Batch, draft: Draft, links: Links | None = None) -> str:
    """A message's first words, in the batch's language: the config's content template, else
    who appears, or the album, or the post's own headline (``sidecar.targets.words``)."""
    return message_text(batch, draft.deliveries, links, nonce_of(batch, draft))


def who_to_ping(batch: Batch, draft: Draft) -> tuple[str, dict[str, object]]:
    """The mentions in front of a message, and the allowed mentions that let exactly those
    ping (a post pings nobody)."""
    if draft.kind == POST:
        return "", NO_MENTIONS
    users = member_users(batch, [d.asset for d in draft.deliveries])
    return (
        mention_prefix(batch.mention_roles, users),
        allowed_mentions(batch.mention_roles, users),
    )


def nonce_of(batch: Batch, draft: Draft) -> str:
    return message_nonce(batch.rule, batch.target, draft.ids)


def _assets_message(
    batch: Batch, draft: Draft, links: Links, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """One message of a chunk of the batch: its summary line, then an embed per asset."""
    embeds, files = asset_embeds(batch, draft.deliveries, links, thumbnails)
    prefix, mentions = who_to_ping(batch, draft)
    return RenderedMessage(
        content=truncate(prefix + headline(batch, draft, links), CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=mentions,
        delivery_ids=draft.ids,
        nonce=nonce_of(batch, draft),
        link=embeds[0].get("url") if embeds else None,  # the first asset's, as before
    )


def post_message(
    batch: Batch,
    draft: Draft,
    post: PostRef,
    links: Links,
    thumbnails: Mapping[str, Thumbnail],
) -> RenderedMessage:
    """One scheduled post message: its headline as the content (what a notification shows),
    and its pictures as one gallery (embeds that share a url) under a link to Immich. The
    headline is said once: the embed's title is the link, not the headline again. Mentions are
    off: a post never pings anyone."""
    link = links.rebased(post.link) or links.everything()
    embeds, files = post_embeds(batch, links, link, draft.shown[:DISCORD_MAX_EMBEDS], thumbnails)
    return RenderedMessage(
        content=truncate(headline(batch, draft, links), CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=NO_MENTIONS,
        delivery_ids=draft.ids,
        nonce=nonce_of(batch, draft),
        link=link,
    )


def _summary_message(
    batch: Batch, draft: Draft, links: Links, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """A large burst as one message: its summary, the first pictures, a link to see them all."""
    album = draft.album
    text = headline(batch, draft, links)
    link = links.everything() if album is None else links.album(album.id)
    words = summary_words(batch, links, album)
    embeds, files = summary_embeds(words, link, draft.shown, thumbnails)
    prefix, mentions = who_to_ping(batch, draft)
    return RenderedMessage(
        content=truncate(prefix + text, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=mentions,
        delivery_ids=draft.ids,
        nonce=nonce_of(batch, draft),
        link=link,
    )
