"""What every Discord sink does with a batch: fetch its pictures and videos from Immich, make
each message's shared link (``links: shared``), lay the messages out (a gallery, or today's
embeds) and send them one by one.

A message Discord refuses as too large (413) is sent again once per step down, never unchanged:
first with smaller pictures, then without its videos (each shown by its preview, with why);
each 413 is counted (``discord_too_large_total``). A webhook that refuses components gets
the same messages as embeds from then on (said once).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    AlbumRef,
    Batch,
    Delivery,
    DeliveryError,
    MediaSource,
    MessageRef,
    PermanentDeliveryError,
    SentMessages,
    SharedLinkMaker,
    ShareRequest,
)
from sidecar.targets.discord.fetch import fetch_media, fetch_thumbnails
from sidecar.targets.discord.render.batch import SUMMARY, Draft, drafts, render_embeds
from sidecar.targets.discord.render.fit import Part, fit
from sidecar.targets.discord.render.gallery import Buttons, render_gallery, render_gallery_embeds
from sidecar.targets.discord.render.message import Media, RenderedMessage, message_nonce
from sidecar.targets.links import Links, share_link
from sidecar.targets.presentation import Presentation

log = logging.getLogger(__name__)

# Posts one message; returns the message Discord made, where the answer says it.
SendOne = Callable[[RenderedMessage], Awaitable[MessageRef | None]]
STEPS = ("smaller pictures", "no videos")  # what each 413 takes away, in turn
NO_VIDEO_NOTE = "too large for this Discord server"


class MessageTooLarge(PermanentDeliveryError):
    """Discord answered 413: the message's files are over its upload limit."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("too_large", detail or "Discord refused the message as too large (413)")


class ComponentsRefused(PermanentDeliveryError):
    """Discord refused a components v2 message (a webhook that takes no components)."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("components_refused", detail)


def batch_attempts(batch: Batch) -> int:
    """How many times this batch already failed."""
    return max((d.attempts for d in batch.deliveries), default=0)


class _Sent:
    """The deliveries a batch's messages carried so far, and those messages."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.messages: dict[int, MessageRef] = {}

    def add(self, ids: tuple[int, ...], ref: MessageRef | None) -> None:
        self.ids.extend(ids)
        if ref is not None:
            self.messages.update(dict.fromkeys(ids, ref))


class BatchSender:
    """How one Discord target sends its batches (``send(batch, send_one)``); ``send_one``
    posts one rendered message and raises a DeliveryError (MessageTooLarge for a 413,
    ComponentsRefused for a refused gallery)."""

    def __init__(
        self,
        target: str,
        source: MediaSource,
        external_url: str,
        presentation: Presentation,
        *,
        shared: SharedLinkMaker | None = None,
        buttons: Buttons | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._target = target
        self._source = source
        self._external_url = external_url
        self._presentation = presentation
        self._shared = shared
        self._buttons = buttons or Buttons()
        self._metrics = metrics
        self.gallery = presentation.gallery  # False once Discord refused components here

    async def send(self, batch: Batch, send_one: SendOne) -> SentMessages:
        """Send the batch's messages in turn; returns the message that carried each delivery
        (where the answer said it). A failure carries the ids of the deliveries whose messages
        were already accepted, and their messages."""
        sent = _Sent()
        try:
            if self.gallery:
                await self._send_galleries(batch, send_one, sent)
            else:
                await self._send_embeds(batch, send_one, sent)
        except DeliveryError as error:
            error.sent_ids = tuple(sent.ids)
            error.messages = sent.messages
            raise
        return sent.messages

    async def _send_embeds(self, batch: Batch, send_one: SendOne, sent: _Sent) -> None:
        found = drafts(batch)
        pictures = await fetch_thumbnails(
            self._source, [a for d in found for a in d.shown], attempts=batch_attempts(batch)
        )
        for draft in found:
            links = await self.links_for(batch, draft.deliveries, draft.album)
            message = render_embeds(batch, draft, links, pictures)
            try:
                ref = await send_one(message)
            except MessageTooLarge:
                self._count_too_large(batch)
                small = await fetch_thumbnails(self._source, draft.shown, size="thumbnail")
                ref = await send_one(render_embeds(batch, draft, links, small))
            sent.add(message.delivery_ids, ref)

    async def _send_galleries(self, batch: Batch, send_one: SendOne, sent: _Sent) -> None:
        found = drafts(batch, gallery=True)
        media = await fetch_media(
            self._source,
            [a for d in found for a in d.shown],
            self._presentation.video,
            attempts=batch_attempts(batch),
            videos={a.id for d in found if d.kind != SUMMARY for a in d.shown},
            words=batch.words,
        )
        for draft in found:
            for part in fit(draft, media):
                links = await self.links_for(batch, part.deliveries, draft.album)
                ref = await self._send_part(batch, draft, part, links, media, send_one)
                sent.add(part.ids, ref)

    async def _send_part(
        self,
        batch: Batch,
        draft: Draft,
        part: Part,
        links: Links,
        media: Mapping[str, Media],
        send_one: SendOne,
    ) -> MessageRef | None:
        """One message, stepped down once per 413 (never sent unchanged twice)."""
        for step in range(len(STEPS) + 1):
            message = self._render(batch, draft, part, links, media)
            try:
                return await send_one(message)
            except ComponentsRefused as refused:
                if not self.gallery:
                    raise
                self._refused_components(batch, refused)
                return await send_one(render_gallery_embeds(batch, draft, part, links, media))
            except MessageTooLarge:
                self._count_too_large(batch)
                smaller = await self._step_down(step, part, media)
                if step == len(STEPS) or smaller == media:
                    raise
                log.info(
                    "target %s: Discord refused a message as too large (413); sending it "
                    "again with %s",
                    self._target,
                    STEPS[step],
                    extra=log_fields(target=self._target, rule=batch.rule, reason="too_large"),
                )
                media = smaller
        raise MessageTooLarge()  # not reached: the last step returns or raises

    def _render(
        self, batch: Batch, draft: Draft, part: Part, links: Links, media: Mapping[str, Media]
    ) -> RenderedMessage:
        if self.gallery:
            return render_gallery(batch, draft, part, links, media, self._buttons)
        return render_gallery_embeds(batch, draft, part, links, media)

    async def _step_down(
        self, step: int, part: Part, media: Mapping[str, Media]
    ) -> dict[str, Media]:
        """The media of a message with what the next step takes away."""
        if step == 0:
            small = await fetch_thumbnails(self._source, part.shown, size="thumbnail")
            return {
                key: replace(item, picture=small.get(key, item.picture))
                for key, item in media.items()
            }
        return {
            key: item if item.video is None else Media(item.picture, None, NO_VIDEO_NOTE)
            for key, item in media.items()
        }

    async def links_for(
        self, batch: Batch, deliveries: tuple[Delivery, ...], album: AlbumRef | None
    ) -> Links:
        """Where one message's links go; with ``links: shared`` its shared link, made before
        it is sent (and kept: a retry or a restart asks for the same one)."""
        style = self._presentation.links
        if style != "shared":
            return Links(style, self._external_url)
        key = None
        if self._shared is not None:
            options = self._presentation.shared_links
            ids = tuple(d.id for d in deliveries)
            key = await self._shared.key_for(
                ShareRequest(
                    target=self._target,
                    message=message_nonce(batch.rule, batch.target, ids),
                    asset_ids=tuple(dict.fromkeys(d.asset.id for d in deliveries)),
                    album_id=album.id if album is not None else None,
                    expire=options.expire,
                    download=options.download,
                    metadata=options.metadata,
                    description=f"immich-discord-sidecar: {batch.target} ({batch.rule})",
                )
            )
        if key is None:  # no permission: links into Immich (said once, by the link maker)
            return Links("immich", self._external_url)
        return Links("shared", self._external_url, share_link(self._external_url, key))

    def _count_too_large(self, batch: Batch) -> None:
        if self._metrics is not None:
            self._metrics.discord_too_large.labels(target=self._target).inc()

    def _refused_components(self, batch: Batch, refused: ComponentsRefused) -> None:
        self.gallery = False
        log.warning(
            "target %s: Discord refused a gallery (components) here (%s); sending its "
            "messages as embeds from now on",
            self._target,
            refused.detail or refused.reason,
            extra=log_fields(target=self._target, rule=batch.rule, reason=refused.reason),
        )
