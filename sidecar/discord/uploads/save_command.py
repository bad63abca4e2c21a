"""The "Save to Immich" message command (right-click a message > Apps): the message's photos and
videos go into Immich, through the same checks and upload path as ``/immich upload``.

An interaction carries the message whole (content and attachments) without any privileged
intent, so it works in every channel the bot can see. Who may use it: the upload command's
``allowed_roles``; where the uploads go: its ``album``; how big: its ``max_mb``. The description
names the message's author, as an ingest channel would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import discord
from discord import app_commands

from sidecar.config.ingest_checks import render_description
from sidecar.config.model import DEFAULT_INGEST_DESCRIPTION, Settings
from sidecar.discord.uploads.checks import Named, upload_refusal
from sidecar.discord.uploads.ingest import summary_line, tally
from sidecar.discord.uploads.upload import AttachmentUploader, ImmichForUploads
from sidecar.immich.permissions import SAVE_COMMAND

log = logging.getLogger(__name__)

NAME = "Save to Immich"
NO_MENTIONS = discord.AllowedMentions.none()


def save_to_immich(
    settings: Callable[[], Settings], immich: ImmichForUploads
) -> app_commands.ContextMenu:
    async def save(interaction: discord.Interaction, message: discord.Message) -> None:
        try:
            await _save(interaction, message, settings(), immich)
        except Exception:
            log.exception('"%s" failed', NAME)
            text = "Sorry, something went wrong on our side; the details are in the sidecar's log."
            await _say(interaction, text)

    return app_commands.ContextMenu(name=NAME, callback=save)


async def _save(
    interaction: discord.Interaction,
    message: discord.Message,
    settings: Settings,
    immich: ImmichForUploads,
) -> None:
    config = settings.discord.upload
    if not config.enabled:
        await _say(interaction, "Uploads to Immich are turned off.")
        return
    roles = [Named(r.id, r.name) for r in getattr(interaction.user, "roles", [])]
    refusal = upload_refusal(config.allowed_roles, (), roles, None)
    if refusal is not None:
        await _say(interaction, f"Refused: {refusal}.")
        return
    if not message.attachments:
        await _say(interaction, "That message has no photo or video attached.")
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    external = settings.immich.external_url.rstrip("/")
    channel = getattr(message.channel, "name", None) or "a direct message"
    report = await AttachmentUploader(immich, lambda: external, SAVE_COMMAND).upload(
        message.attachments,
        max_mb=config.max_mb,
        description=render_description(
            DEFAULT_INGEST_DESCRIPTION, message.author.display_name, channel
        ),
        album=config.album,
    )
    log.info("%s: message %s: %s", NAME, message.id, tally(report))
    text = "\n".join([summary_line(report, config.album, external), *report.lines()])
    await _say(interaction, text[:2000])


async def _say(interaction: discord.Interaction, text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
