"""The `/immich` slash commands: upload, person, status, memories.

Every reply that repeats user or Immich text is sent with no allowed mentions, and no
traceback reaches the user: failures are logged and answered with one polite line.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Protocol

import discord
from discord import app_commands
from discord.app_commands import locale_str

from sidecar.config.model import Settings
from sidecar.discord.accounts import (
    DESCRIPTION_HELP,
    NAME_HELP,
    PERSON_DESCRIPTION,
    UPLOAD_DESCRIPTION,
    account_commands,
    unknown_account,
)
from sidecar.discord.speech import member_words, reply_text
from sidecar.discord.status_text import status_lines
from sidecar.discord.uploads.checks import Named, upload_refusal
from sidecar.discord.uploads.upload import AttachmentUploader, ImmichForUploads, off_sentence
from sidecar.engine.posts.plan import Plan
from sidecar.engine.status import StatusInfo
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person
from sidecar.immich.permissions import MEMORIES_COMMAND, PERSON, UPLOAD
from sidecar.messages import texts
from sidecar.messages.posts import headline
from sidecar.messages.render import say
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
    """``/immich``. With several Immich accounts (``accounts``, the first the default one),
    ``person`` and ``upload`` take an ``account`` option (``discord.accounts``)."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        immich: ImmichForCommands,
        status: StatusProvider,
        memories: MemoriesProvider | None = None,
        accounts: Mapping[str, ImmichForCommands] | None = None,
    ) -> None:
        super().__init__(name="immich", description=locale_str("Your Immich photo library"))
        self._settings = settings
        self._immich = immich
        self._status = status
        self._memories = memories
        self._accounts = dict(accounts or {})
        if len(self._accounts) > 1:
            for command in account_commands(self):
                self.remove_command(command.name)
                self.add_command(command)

    @property
    def _external_url(self) -> str:
        return self._settings().immich.external_url.rstrip("/")

    @property
    def account_names(self) -> tuple[str, ...]:
        return tuple(self._accounts)

    def client_for(self, account: str | None, *, upload: bool = False) -> ImmichForCommands | None:
        """The client of the account chosen, or None when no account has that name. Without
        one, the default: uploads go into the upload account (``immich``, the bot's own), a
        person is looked up in the first account."""
        if account is not None:
            return self._accounts.get(account)
        if upload or not self._accounts:
            return self._immich
        return next(iter(self._accounts.values()))

    def _unknown_account(self, interaction: discord.Interaction, account: str | None) -> str:
        words = member_words(interaction, self._settings())
        return unknown_account(account or "", self.account_names, words)

    def _say(self, interaction: discord.Interaction, text: Text, **values: object) -> str:
        """A built-in text in this member's language (values from Immich or Discord escaped
        by the caller)."""
        return reply_text(interaction, self._settings(), text, **values)

    # ------------------------------------------------------------------ upload

    @app_commands.command(name="upload", description=UPLOAD_DESCRIPTION)
    @app_commands.describe(description=DESCRIPTION_HELP)
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
        files = (file1, file2, file3, file4, file5, file6, file7, file8, file9, file10)
        await self.upload_files(interaction, files, description, None)

    async def upload_files(
        self,
        interaction: discord.Interaction,
        attachments: Sequence[discord.Attachment | None],
        description: str | None,
        account: str | None,
    ) -> None:
        files = [f for f in attachments if f is not None]
        try:
            await interaction.response.defer(ephemeral=True, thinking=True)
            lines = await self._upload(interaction, files, description, account)
            await reply(interaction, "\n".join(lines)[:2000], ephemeral=True)
        except Exception:
            log.exception("/immich upload failed")
            await self._apologise(interaction)

    async def _upload(
        self,
        interaction: discord.Interaction,
        files: Sequence[discord.Attachment],
        description: str | None,
        account: str | None,
    ) -> list[str]:
        config = self._settings().discord.upload
        if not config.enabled:
            return [self._say(interaction, texts.UPLOADS_OFF)]
        immich = self.client_for(account, upload=True)
        if immich is None:
            return [self._unknown_account(interaction, account)]
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
        uploader = AttachmentUploader(immich, lambda: self._external_url, UPLOAD)
        report = await uploader.upload(
            files, max_mb=config.max_mb, description=description, album=config.album
        )
        return report.lines()

    # ------------------------------------------------------------------ person

    @app_commands.command(name="person", description=PERSON_DESCRIPTION)
    @app_commands.describe(name=NAME_HELP)
    async def person(self, interaction: discord.Interaction, name: str) -> None:
        await self.person_lookup(interaction, name, None)

    async def person_lookup(
        self, interaction: discord.Interaction, name: str, account: str | None
    ) -> None:
        immich = self.client_for(account)
        try:
            if not self._settings().discord.person.enabled:
                await reply(interaction, self._say(interaction, texts.PERSON_OFF), ephemeral=True)
                return
            if immich is None:
                await reply(interaction, self._unknown_account(interaction, account))
                return
            await interaction.response.defer(thinking=True)
            people = await immich.search_person(name)
            found = pick_person(people, name)
            if found is None:
                await reply(
                    interaction, self._say(interaction, texts.NO_ONE_CALLED, name=safe_text(name))
                )
                return
            count = await immich.person_statistics(found.id)
            face = await immich.person_thumbnail(found.id)
            embed = discord.Embed(
                title=(safe_text(found.name) or self._say(interaction, texts.NO_NAME))[:256],
                url=f"{self._external_url}/people/{found.id}",
                description=self._say(interaction, texts.PERSON_PHOTOS, count=count),
            )
            if account is not None:
                embed.set_footer(
                    text=self._say(interaction, texts.ACCOUNT, account=safe_text(account))
                )
            files = []
            if face:
                files.append(discord.File(io.BytesIO(face), filename="face.jpg"))
                embed.set_thumbnail(url="attachment://face.jpg")
            await interaction.followup.send(embed=embed, files=files, allowed_mentions=NO_MENTIONS)
        except ImmichPermissionError:
            assert immich is not None
            reason = await off_sentence(immich, PERSON)
            await reply(interaction, self._say(interaction, texts.SORRY_OFF, reason=reason))
        except Exception:
            log.exception("/immich person failed")
            await self._apologise(interaction)

    @person.autocomplete("name")
    async def person_names(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self.names_like(current, None)

    async def names_like(self, current: str, account: str | None) -> list[app_commands.Choice[str]]:
        """The names of the account's people that the typed text finds (autocomplete)."""
        immich = self.client_for(account)
        if not current.strip() or not self._settings().discord.person.enabled or immich is None:
            return []
        try:
            people = await immich.search_person(current.strip())
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
            reason = await off_sentence(self._immich, MEMORIES_COMMAND)
            await reply(interaction, self._say(interaction, texts.SORRY_OFF, reason=reason))
        except Exception:
            log.exception("/immich memories failed")
            await self._apologise(interaction)

    async def _apologise(self, interaction: discord.Interaction) -> None:
        try:
            await reply(interaction, self._say(interaction, texts.SORRY), ephemeral=True)
        except Exception:
            log.exception("could not even apologise to the user")
