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
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import discord

from sidecar.config.model import QuietHours, Secret
from sidecar.messages.render import ENGLISH, Words
from sidecar.ops.logging import log_fields
from sidecar.targets.base import (
    Batch,
    Delivery,
    DeliveryError,
    Members,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
    ThumbnailSource,
)
from sidecar.targets.discord.buttons import post_view
from sidecar.targets.discord.channel import discord_allowed_mentions
from sidecar.targets.discord.render.message import RenderedMessage
from sidecar.targets.discord.send import send_rendered

log = logging.getLogger(__name__)

CANNOT_DM = 50007  # "Cannot send messages to this user"
UNKNOWN_USER = 10013


@dataclass(frozen=True)
class DmTarget:
    name: str
    audience: str = "members"
    quiet_hours: QuietHours | None = None


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
        thumbnails: ThumbnailSource,
        external_url: str,
        members: Members,
    ) -> None:
        self._client = client
        self._target = target
        self._thumbnails = thumbnails
        self._external_url = external_url
        self._members = members

    async def send(self, batch: Batch) -> None:
        if not self._client.is_ready():
            raise TemporaryDeliveryError("discord_not_ready", "the bot is not connected yet")
        wanted: dict[int, list[Delivery]] = {}
        for delivery in batch.deliveries:
            for user in self._members.dm_recipients(batch.rule, delivery.asset):
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

            await send_rendered(batch, self._thumbnails, self._external_url, send)
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
        link = message.embeds[0].get("url") if message.embeds else None
        await channel.send(
            content=message.content or None,
            embeds=[discord.Embed.from_dict(e) for e in message.embeds],
            files=[discord.File(io.BytesIO(f.data), filename=f.filename) for f in message.files],
            allowed_mentions=discord_allowed_mentions(message.allowed_mentions),
            view=post_view(link, asset_ids, favourite=False, words=words),
            nonce=message.nonce,
        )

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
        return DmTarget(name=name, audience=str(spec["discord_dm"]), quiet_hours=quiet)

    def problems(
        self, spec: Mapping[str, Any], data: Mapping[str, Any]
    ) -> list[tuple[tuple[str | int, ...], str]]:
        discord_section = data.get("discord")
        if isinstance(discord_section, dict) and (
            "token" in discord_section or "token_file" in discord_section
        ):
            return []
        return [(("discord_dm",), "spotted DMs are sent by the bot: set discord.token")]

    def build_sink(self, target: DmTarget, context: SinkContext) -> DmSink | None:
        if context.bot is None or context.members is None:
            return None
        return DmSink(
            context.bot, target, context.thumbnails, context.external_url, context.members
        )
