"""The `/immich` slash commands: upload, person, status, memories.

Every reply that repeats user or Immich text is sent with no allowed mentions, and no
traceback reaches the user: failures are logged and answered with one polite line.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import discord
from discord import app_commands
from discord.app_commands import locale_str

from sidecar.config.model import Settings
from sidecar.discord.speech import member_words, reply_text
from sidecar.discord.uploads.checks import Named, upload_refusal
from sidecar.discord.uploads.upload import AttachmentUploader, ImmichForUploads, off_sentence
from sidecar.engine.posts.plan import Plan
from sidecar.engine.status import StatusInfo
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person
from sidecar.immich.permissions import MEMORIES_COMMAND, PERSON, UPLOAD, Feature
from sidecar.messages import texts
from sidecar.messages.posts import headline
from sidecar.messages.render import Words, say
from sidecar.messages.texts import Text
from sidecar.targets.discord.safe import attachment_name, safe_text

log = logging.getLogger(__name__)

NO_MENTIONS = discord.AllowedMentions.none()
MAX_CHOICES = 25  # Discord's limit for autocomplete


class ImmichForCommands(ImmichForUploads, Protocol):
    """The Immich client calls the commands make (sidecar.immich.client.ImmichClient)."""

    async def search_person(self, name: str) -> list[Person]: ...

    async def person_thumbnail(self, person_id: str) -> bytes | None: ...

    async def person_statistics(self, person_id: str) -> int: ...

    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]: ...


StatusProvider = Callable[[], Awaitable[StatusInfo]]
MemoriesProvider = Callable[[], Awaitable[Plan]]  # today's memories, as a post would say them
MAX_EMBEDS = 10


def memories_refusal(
    allowed_roles: Sequence[str],
    allowed_channels: Sequence[str],
    caller_roles: Sequence[Named],
    channel: Named | None,
) -> str | None:
    """Why this caller may not ask for memories here, or None. Empty lists allow everyone
    and every channel: the command only reads."""
    roles = [r for r in allowed_roles if r.strip()]
    channels = [c for c in allowed_channels if c.strip()]
    if roles and not any(role.matches(wanted) for role in caller_roles for wanted in roles):
        return "you do not have a role that may ask for memories"
    if channels and (channel is None or not any(channel.matches(c) for c in channels)):
        return "memories are not shown in this channel"
    return None


def _timestamp(moment: datetime, style: str) -> str:
    return f"<t:{int(moment.timestamp())}:{style}>"


async def reply(interaction: discord.Interaction, text: str, *, ephemeral: bool = False) -> None:
    """Answer whether or not the interaction was already answered or deferred."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(
            text, ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
        )


def pick_person(people: Sequence[Person], name: str) -> Person | None:
    """The exact (case-insensitive) match if there is one, else the first visible person."""
    wanted = name.strip().casefold()
    visible = [p for p in people if not p.is_hidden] or list(people)
    for person in visible:
        if person.name.casefold() == wanted:
            return person
    return visible[0] if visible else None


class ImmichGroup(app_commands.Group):
    def __init__(
        self,
        settings: Callable[[], Settings],
        immich: ImmichForCommands,
        status: StatusProvider,
        memories: MemoriesProvider | None = None,
    ) -> None:
        super().__init__(name="immich", description=locale_str("Your Immich photo library"))
        self._settings = settings
        self._immich = immich
        self._status = status
        self._memories = memories

    @property
    def _external_url(self) -> str:
        return self._settings().immich.external_url.rstrip("/")

    async def _off_sentence(self, feature: Feature) -> str:
        return await off_sentence(self._immich, feature)

    def _say(self, interaction: discord.Interaction, text: Text, **values: object) -> str:
        """A built-in text in this member's language (values from Immich or Discord escaped
        by the caller)."""
        return reply_text(interaction, self._settings(), text, **values)

    # ------------------------------------------------------------------ upload

    @app_commands.command(
        name="upload", description=locale_str("Upload photos or videos into Immich")
    )
    @app_commands.describe(description=locale_str("A description for every uploaded file"))
    async def upload(
        self,
        interaction: discord.Interaction,
        file1: discord.Attachment,
        file2: discord.Attachment | None = None,
        file3: discord.Attachment | None = None,
        file4: discord.Attachment | None = None,
        file5: discord.Attachment | None = None,
        file6: discord.Attachment | None = None,
        file7: discord.Attachment | None = None,
        file8: discord.Attachment | None = None,
        file9: discord.Attachment | None = None,
        file10: discord.Attachment | None = None,
        description: str | None = None,
    ) -> None:
        files = [
            f
            for f in (file1, file2, file3, file4, file5, file6, file7, file8, file9, file10)
            if f is not None
        ]
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            lines = await self._upload(interaction, files, description)
            await reply(interaction, "\n".join(lines)[:2000], ephemeral=True)
        except Exception:
            log.exception("/immich upload failed")
            await self._apologise(interaction)

    async def _upload(
        self,
        interaction: discord.Interaction,
        files: Sequence[discord.Attachment],
        description: str | None,
    ) -> list[str]:
        config = self._settings().discord.upload
        if not config.enabled:
            return [self._say(interaction, texts.UPLOADS_OFF)]
        member_roles = getattr(interaction.user, "roles", [])
        channel = interaction.channel
        channel_name = getattr(channel, "name", None) or ""
        refusal = upload_refusal(
            config.allowed_roles,
            config.allowed_channels,
            [Named(r.id, r.name) for r in member_roles],
            Named(channel.id, channel_name) if channel is not None else None,
        )
        if refusal is not None:
            return [self._say(interaction, texts.REFUSED, reason=refusal)]
        uploader = AttachmentUploader(self._immich, lambda: self._external_url, UPLOAD)
        report = await uploader.upload(
            files, max_mb=config.max_mb, description=description, album=config.album
        )
        return report.lines()

    # ------------------------------------------------------------------ person

    @app_commands.command(name="person", description=locale_str("Look someone up in Immich"))
    @app_commands.describe(name=locale_str("The person's name in Immich"))
    async def person(self, interaction: discord.Interaction, name: str) -> None:
        try:
            if not self._settings().discord.person.enabled:
                await reply(interaction, self._say(interaction, texts.PERSON_OFF), ephemeral=True)
                return
            await interaction.response.defer(thinking=True)
            people = await self._immich.search_person(name)
            found = pick_person(people, name)
            if found is None:
                await reply(
                    interaction, self._say(interaction, texts.NO_ONE_CALLED, name=safe_text(name))
                )
                return
            count = await self._immich.person_statistics(found.id)
            face = await self._immich.person_thumbnail(found.id)
            embed = discord.Embed(
                title=(safe_text(found.name) or self._say(interaction, texts.NO_NAME))[:256],
                url=f"{self._external_url}/people/{found.id}",
                description=self._say(interaction, texts.PERSON_PHOTOS, count=count),
            )
            files = []
            if face:
                files.append(discord.File(io.BytesIO(face), filename="face.jpg"))
                embed.set_thumbnail(url="attachment://face.jpg")
            await interaction.followup.send(embed=embed, files=files, allowed_mentions=NO_MENTIONS)
        except ImmichPermissionError:
            reason = await self._off_sentence(PERSON)
            await reply(interaction, self._say(interaction, texts.SORRY_OFF, reason=reason))
        except Exception:
            log.exception("/immich person failed")
            await self._apologise(interaction)

    @person.autocomplete("name")
    async def person_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if not current.strip() or not self._settings().discord.person.enabled:
            return []
        try:
            people = await self._immich.search_person(current.strip())
        except Exception as error:
            log.warning("person autocomplete failed: %s", type(error).__name__)
            return []
        names = list(dict.fromkeys(p.name[:100] for p in people if p.name and not p.is_hidden))
        return [app_commands.Choice(name=n, value=n) for n in names[:MAX_CHOICES]]

    # ------------------------------------------------------------------ status

    @app_commands.command(name="status", description=locale_str("How the Immich sidecar is doing"))
    async def status(self, interaction: discord.Interaction) -> None:
        try:
            info = await self._status()
            words = member_words(interaction, self._settings())
            latency = interaction.client.latency
            lines = status_lines(info, words)
            if latency == latency and latency != float("inf"):  # NaN before the first heartbeat
                lines.append(say(words, texts.STATUS_LATENCY, {"ms": round(latency * 1000)}))
            await reply(interaction, "\n".join(lines), ephemeral=True)
        except Exception:
            log.exception("/immich status failed")
            await self._apologise(interaction)

    # ------------------------------------------------------------------ memories

    @app_commands.command(
        name="memories", description=locale_str("Today's on this day memories from Immich")
    )
    async def memories(self, interaction: discord.Interaction) -> None:
        try:
            config = self._settings().discord.memories
            if not config.enabled or self._memories is None:
                await reply(interaction, self._say(interaction, texts.MEMORIES_OFF), ephemeral=True)
                return
            channel = interaction.channel
            refusal = memories_refusal(
                config.allowed_roles,
                config.allowed_channels,
                [Named(r.id, r.name) for r in getattr(interaction.user, "roles", [])],
                Named(channel.id, getattr(channel, "name", None) or "")
                if channel is not None
                else None,
            )
            if refusal is not None:
                text = self._say(interaction, texts.REFUSED, reason=refusal)
                await reply(interaction, text, ephemeral=True)
                return
            await interaction.response.defer(thinking=True)
            plan = await self._memories()
            if not plan.messages:
                await reply(interaction, self._say(interaction, texts.NO_MEMORIES))
                return
            words = member_words(interaction, self._settings())
            embeds, files = [], []
            for message in plan.messages[:MAX_EMBEDS]:
                title = headline(message.facts, words, safe_text) or safe_text(message.text)
                embed = discord.Embed(
                    title=title[:256],
                    url=message.link,
                    description=say(words, texts.PICTURES, {"count": len(message.assets)}),
                )
                if message.assets:
                    data, content_type = await self._immich.asset_thumbnail(message.assets[0].id)
                    name = attachment_name(message.assets[0].id, content_type)
                    files.append(discord.File(io.BytesIO(data), filename=name))
                    embed.set_image(url=f"attachment://{name}")
                embeds.append(embed)
            await interaction.followup.send(
                content=say(words, texts.ON_THIS_DAY, {}),
                embeds=embeds,
                files=files,
                allowed_mentions=NO_MENTIONS,
            )
        except ImmichPermissionError:
            reason = await self._off_sentence(MEMORIES_COMMAND)
            await reply(interaction, self._say(interaction, texts.SORRY_OFF, reason=reason))
        except Exception:
            log.exception("/immich memories failed")
            await self._apologise(interaction)

    async def _apologise(self, interaction: discord.Interaction) -> None:
        try:
            await reply(interaction, self._say(interaction, texts.SORRY), ephemeral=True)
        except Exception:
            log.exception("could not even apologise to the user")


def status_lines(info: StatusInfo, words: Words) -> list[str]:
    """What ``/immich status`` says, in the member's language."""
    if info.immich_reachable:
        version = safe_text(info.immich_version or "?")
        lines = [say(words, texts.STATUS_REACHABLE, {"version": version})]
    else:
        lines = [say(words, texts.STATUS_UNREACHABLE, {})]
    poll = info.last_successful_poll
    when = _timestamp(poll, "R") if poll else say(words, texts.STATUS_NEVER, {})
    lines += [
        say(words, texts.STATUS_POLL, {"when": when}),
        say(words, texts.STATUS_WAITING, {"count": info.outbox_pending}),
        say(words, texts.STATUS_FAILED, {"count": info.outbox_failed}),
        say(words, texts.STATUS_CONFIG, {"when": _timestamp(info.config_loaded_at, "f")}),
    ]
    if info.albums:
        lines.append(watched_albums_line(info.albums, words))
    lines += [say(words, texts.STATUS_OFF, {"reason": safe_text(s)}) for s in info.features_off]
    return lines + [safe_text(problem) for problem in info.failing_accounts]


def watched_albums_line(
    albums: Sequence[tuple[str, int]], words: Words | None = None, shown: int = 10
) -> str:
    """ "Watched albums: Holiday 2026 (1,204 assets), Family (87 assets)"."""
    words = words or Words()
    unnamed = say(words, texts.UNNAMED_ALBUM_STATUS, {})
    parts = [
        say(words, texts.STATUS_ALBUM, {"name": safe_text(name) or unnamed, "count": count})
        for name, count in albums[:shown]
    ]
    if len(albums) > shown:
        parts.append(say(words, texts.STATUS_MORE_ALBUMS, {"count": len(albums) - shown}))
    return say(words, texts.STATUS_ALBUMS, {"albums": parts})
