"""Spotted DMs (``targets.NAME: {discord_dm: members}``): each delivery goes, as a direct
message from the bot, to the linked member of each watched person recognised in the asset.

Rules decide what counts, as for any target (people, albums, kinds, quiet hours, batching and
summaries). Each (delivery, member) DM is recorded once sent, so a retry after one member's
passing failure never DMs the others twice. A member whose DMs are closed (Discord error
50007) is a permanent failure for that member only: recorded, logged once, not tried again
until they run ``/immich dm on``.
"""

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
    Delivery,
    DeliveryError,
    MediaSource,
    Members,
    SharedLinkMaker,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
)
from sidecar.targets.discord.buttons import layout_view, post_view
from sidecar.targets.discord.channel import discord_allowed_mentions
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

CANNOT_DM = 50007  # "Cannot send messages to this user"
UNKNOWN_USER = 10013


@dataclass(frozen=True)
class DmTarget:
    name: str
    audience: str = "members"
    quiet_hours: QuietHours | None = None
    presentation: Presentation = field(default_factory=Presentation)


def closed_reason(error: discord.HTTPException) -> str | None:
    """Why DMs to a member fail for good, or None when the failure may pass."""
    if error.code == CANNOT_DM:
        return "Discord refuses DMs to this member (error 50007: they block DMs from the server)"
    if error.code == UNKNOWN_USER or isinstance(error, discord.NotFound):
        return "Discord does not know this user id (check discord.members)"
    if isinstance(error, discord.Forbidden):
        return f"Discord refuses DMs to this member ({error.code or error.status}: {error.text})"
    return None


class DmSink:
    def __init__(
        self,
        client: discord.Client,
        target: DmTarget,
        thumbnails: MediaSource,
        external_url: str,
        members: Members,
        *,
        shared_links: SharedLinkMaker | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._client = client
        self._target = target
        self._members = members
        # A DM is a gallery too, never with ♥ (Favourite is for the family channel).
        self._sender = BatchSender(
            target.name,
            thumbnails,
            external_url,
            target.presentation,
            shared=shared_links,
            buttons=Buttons(open=True, favourite=False),
            metrics=metrics,
        )

    async def send(self, batch: Batch) -> None:
        if not self._client.is_ready():
            raise TemporaryDeliveryError("discord_not_ready", "the bot is not connected yet")
        wanted: dict[int, list[Delivery]] = {}
        for delivery in batch.deliveries:
            for user in dict.fromkeys(
                user
                for rule in delivery.rules  # one DM whichever of its rules names the member
                for user in self._members.dm_recipients(rule, delivery.asset)
            ):
                wanted.setdefault(user, []).append(delivery)
        done = self._members.dms_sent(d.id for d in batch.deliveries)
        failure: DeliveryError | None = None
        for user, deliveries in wanted.items():
            todo = tuple(d for d in deliveries if (d.id, user) not in done)
            if not todo:
                continue
            own = replace(batch, deliveries=todo, mention_roles=(), member_mentions=())
            try:
                await self._send_to(user, own)
            except DeliveryError as error:
                failure = error
                log.warning(
                    "spotted DM target %s: DM to member %s not sent yet: %s",
                    self._target.name,
                    user,
                    error,
                    extra=log_fields(target=self._target.name, rule=batch.rule),
                )
        if failure is not None:  # the others' DMs are recorded: a retry sends only the rest
            raise failure
        self._members.forget_finished_dms()

    async def _send_to(self, user: int, batch: Batch) -> None:
        assets = {d.id: d.asset.id for d in batch.deliveries}
        try:
            channel = await self._client.create_dm(discord.Object(user))

            async def send(message: RenderedMessage) -> None:
                ids = [assets[i] for i in message.delivery_ids]
                await self._send_one(channel, message, ids, batch.words)
                self._members.record_dms(user, message.delivery_ids)

            await self._sender.send(batch, send)
        except discord.HTTPException as error:
            reason = closed_reason(error)
            if reason is None:
                raise _temporary(error) from error
            self._members.close_dms(user, reason)
        except (discord.RateLimited, TimeoutError, aiohttp.ClientError, OSError) as error:
            raise _temporary(error) from error

    async def _send_one(
        self,
        channel: discord.DMChannel,
        message: RenderedMessage,
        asset_ids: list[str],
        words: Words = ENGLISH,
    ) -> None:
        files = [discord.File(io.BytesIO(f.data), filename=f.filename) for f in message.files]
        mentions = discord_allowed_mentions(message.allowed_mentions)
        try:
            if message.is_v2:
                await channel.send(
                    view=layout_view(message.components),
                    files=files,
                    allowed_mentions=mentions,
                    nonce=message.nonce,
                )
                return
            await channel.send(
                content=message.content or None,
                embeds=[discord.Embed.from_dict(e) for e in message.embeds],
                files=files,
                allowed_mentions=mentions,
                view=post_view(message.link, asset_ids, favourite=False, words=words),
                nonce=message.nonce,
            )
        except discord.HTTPException as error:
            if error.status == 413:
                raise MessageTooLarge() from error
            if error.status == 400 and message.is_v2:
                raise ComponentsRefused(f"{error.code}: {error.text}"[:200]) from error
            raise

    async def close(self) -> None:
        """Nothing to release: the bot owns the connection."""


def _temporary(error: Exception) -> TemporaryDeliveryError:
    if isinstance(error, discord.RateLimited):
        return TemporaryDeliveryError(
            "rate_limited", "Discord asks to wait", retry_after=error.retry_after
        )
    if isinstance(error, discord.HTTPException):
        return TemporaryDeliveryError("discord_server_error", f"Discord answered {error.status}")
    return TemporaryDeliveryError(
        "connection", f"lost the connection to Discord ({type(error).__name__})"
    )


class DmKind(TargetKind[DmTarget]):
    """``targets.NAME.discord_dm: members``."""

    keys = ("discord_dm",)
    label = ("spotted DM target", "spotted DM targets")
    config_type = DmTarget

    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> DmTarget:
        return DmTarget(
            name=name,
            audience=str(spec["discord_dm"]),
            quiet_hours=quiet,
            presentation=read_presentation(spec),
        )

    def problems(
        self, spec: Mapping[str, Any], data: Mapping[str, Any]
    ) -> Iterable[tuple[KeyPath, str]]:
        discord_section = data.get("discord")
        if not (
            isinstance(discord_section, dict)
            and ("token" in discord_section or "token_file" in discord_section)
        ):
            yield (("discord_dm",), "spotted DMs are sent by the bot: set discord.token")
        yield from presentation_problems(spec, data, DISCORD_KEYS)

    async def describe(self, target: DmTarget, batch: Batch, source: MediaSource) -> list[str]:
        return await describe_batch(batch, source, target.presentation)

    def build_sink(self, target: DmTarget, context: SinkContext) -> DmSink | None:
        if context.bot is None or context.members is None:
            return None
        return DmSink(
            context.bot,
            target,
            context.thumbnails,
            context.external_url,
            context.members,
            shared_links=context.shared_links,
            metrics=context.metrics,
        )
