"""Send batches to a Discord channel through the bot."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import discord

from sidecar.config.model import KeyPath, QuietHours, Secret
from sidecar.messages.render import ENGLISH, Words
from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    Batch,
    DeliveryError,
    MediaSource,
    Members,
    MessageRef,
    PermanentDeliveryError,
    SentMessages,
    SharedLinkMaker,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
)
from sidecar.targets.discord.buttons import layout_view, post_view
from sidecar.targets.discord.describe import describe_batch
from sidecar.targets.discord.render.gallery import Buttons
from sidecar.targets.discord.render.message import RenderedMessage
from sidecar.targets.discord.send import BatchSender, ComponentsRefused, MessageTooLarge
from sidecar.targets.presentation import (
    DISCORD_KEYS,
    Presentation,
    presentation_problems,
    read_presentation,
)

log = logging.getLogger(__name__)

NEEDED_PERMISSIONS = "View Channel, Send Messages, Embed Links and Attach Files"


@dataclass(frozen=True)
class ChannelTarget:
    name: str
    channel_id: int
    quiet_hours: QuietHours | None = None
    presentation: Presentation = field(default_factory=Presentation)


def discord_allowed_mentions(allowed: dict[str, Any]) -> discord.AllowedMentions:
    """The rendered ``allowed_mentions`` dict as discord.py's object (same meaning)."""
    roles = [discord.Object(int(r)) for r in allowed.get("roles", [])]
    users = [discord.Object(int(u)) for u in allowed.get("users", [])]
    return discord.AllowedMentions(
        everyone=False, users=users or False, roles=roles or False, replied_user=False
    )


# Every way a Discord call can fail that _error_for turns into a delivery error.
_SEND_ERRORS = (
    discord.RateLimited,
    discord.HTTPException,
    TimeoutError,
    aiohttp.ClientError,
    OSError,
)


class BotSink:
    """One bot channel target."""

    def __init__(
        self,
        client: discord.Client,
        target: ChannelTarget,
        thumbnails: MediaSource,
        external_url: str,
        members: Members | None = None,
        favourite_roles: tuple[str, ...] = (),
        *,
        shared_links: SharedLinkMaker | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._target = target
        self._members = members
        self._favourite = bool(favourite_roles)
        self._sender = BatchSender(
            target.name,
            thumbnails,
            external_url,
            target.presentation,
            shared=shared_links,
            buttons=Buttons(open=True, favourite=self._favourite),
            metrics=metrics,
        )

    @property
    def name(self) -> str:
        return self._target.name

    async def send(self, batch: Batch) -> SentMessages:
        # notifications_sent / notification_failures are counted by the dispatcher; the bot's
        # retries are counted by SidecarBot's HTTP trace hook
        if batch.mention_members and self._members is not None:
            batch = replace(
                batch, member_mentions=self._members.mentions(d.asset for d in batch.deliveries)
            )
        assets = {d.id: d.asset.id for d in batch.deliveries}
        try:
            channel = await self._channel()
            return await self._sender.send(
                batch,
                lambda message: self._send_one(
                    channel, message, [assets[i] for i in message.delivery_ids], batch.words
                ),
            )
        except DeliveryError as error:
            log.warning(
                "channel target %s: %s",
                self.name,
                error,
                extra=log_fields(target=self.name, rule=batch.rule, reason=error.reason),
            )
            raise

    async def close(self) -> None:
        """Nothing to release: the bot owns the connection."""

    async def _channel(self) -> discord.abc.Messageable:
        if not self._client.is_ready():
            raise TemporaryDeliveryError("discord_not_ready", "the bot is not connected yet")
        channel_id = self._target.channel_id
        channel: Any = self._client.get_channel(channel_id)
        if channel is None:
            try:
                channel = await self._client.fetch_channel(channel_id)
            except _SEND_ERRORS as error:
                raise self._error_for(error) from error
        if not isinstance(channel, discord.abc.Messageable):
            raise PermanentDeliveryError(
                "not_a_text_channel",
                f"channel {channel_id} of target {self.name!r} is not a text channel",
            )
        return channel

    async def _send_one(
        self,
        channel: discord.abc.Messageable,
        message: RenderedMessage,
        asset_ids: list[str],
        words: Words = ENGLISH,
    ) -> MessageRef:
        files = [discord.File(io.BytesIO(f.data), filename=f.filename) for f in message.files]
        try:
            if message.is_v2:  # a gallery: its buttons are among its components
                sent = await channel.send(
                    view=layout_view(message.components),
                    files=files,
                    allowed_mentions=discord_allowed_mentions(message.allowed_mentions),
                    nonce=message.nonce,
                )
                return _ref(sent)
            sent = await channel.send(
                view=post_view(message.link, asset_ids, favourite=self._favourite, words=words),
                content=message.content or None,
                embeds=[discord.Embed.from_dict(e) for e in message.embeds],
                files=files,
                allowed_mentions=discord_allowed_mentions(message.allowed_mentions),
                # the same deliveries give the same nonce, so a resend after a crash is
                # answered with the earlier message instead of a second post
                nonce=message.nonce,
            )
        except _SEND_ERRORS as error:
            raise self._error_for(error, v2=message.is_v2) from error
        return _ref(sent)

    def _error_for(self, error: Exception, *, v2: bool = False) -> DeliveryError:
        """What a failed Discord call means for the deliveries: wait, or fix something."""
        if isinstance(error, discord.RateLimited):
            return TemporaryDeliveryError(
                "rate_limited", "Discord asks to wait", retry_after=error.retry_after
            )
        if not isinstance(error, discord.HTTPException):
            return TemporaryDeliveryError(
                "connection", f"lost the connection to Discord ({type(error).__name__})"
            )
        where = f"channel {self._target.channel_id} of target {self.name!r}"
        if isinstance(error, discord.Forbidden):
            return PermanentDeliveryError(
                "missing_permission",
                f"the bot may not post in {where}: give it {NEEDED_PERMISSIONS} there "
                f"(Discord said: {error.text or error.status})",
            )
        if isinstance(error, discord.NotFound):
            return PermanentDeliveryError(
                "unknown_channel",
                f"{where} does not exist or the bot is not in its server: check channel_id",
            )
        if error.status >= 500 or error.status == 429:
            return TemporaryDeliveryError(
                "discord_server_error", f"Discord answered {error.status} for {where}"
            )
        if error.status == 413:
            return MessageTooLarge(f"Discord refused the message for {where} as too large (413)")
        if error.status == 400 and v2:
            return ComponentsRefused(f"{error.code}: {error.text}"[:200])
        return PermanentDeliveryError(
            "rejected", f"Discord rejected the message for {where} ({error.status}: {error.text})"
        )


def _ref(sent: discord.Message) -> MessageRef:
    guild = sent.guild.id if sent.guild is not None else None
    return MessageRef(str(sent.channel.id), str(sent.id), None if guild is None else str(guild))


class ChannelKind(TargetKind[ChannelTarget]):
    """``targets.NAME.channel_id``: a channel the bot posts in. The bot checks these targets
    itself at start and in ``doctor`` (``sidecar.discord.bot.channel_problem``)."""

    keys = ("channel_id",)
    label = ("bot channel", "bot channels")
    config_type = ChannelTarget

    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> ChannelTarget:
        return ChannelTarget(
            name=name,
            channel_id=int(spec["channel_id"]),
            quiet_hours=quiet,
            presentation=read_presentation(spec),
        )

    def problems(
        self,
        spec: Mapping[str, Any],
        data: Mapping[str, Any],
    ) -> Iterable[tuple[KeyPath, str]]:
        discord_section = data.get("discord")
        if not (
            isinstance(discord_section, dict)
            and ("token" in discord_section or "token_file" in discord_section)
        ):
            yield (
                ("channel_id",),
                "a channel_id target needs the bot: set discord.token (or use webhook_url)",
            )
        yield from presentation_problems(spec, data, DISCORD_KEYS)

    async def describe(self, target: ChannelTarget, batch: Batch, source: MediaSource) -> list[str]:
        return await describe_batch(batch, source, target.presentation)

    def build_sink(self, target: ChannelTarget, context: SinkContext) -> BotSink | None:
        if context.bot is None:
            return None
        return BotSink(
            context.bot,
            target,
            context.thumbnails,
            context.external_url,
            context.members,
            context.favourite_roles,
            shared_links=context.shared_links,
            metrics=context.metrics,
        )
