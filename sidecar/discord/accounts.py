"""The ``account`` option of ``/immich person`` and ``/immich upload``, registered only with
several Immich accounts (``immich.accounts``): autocompleted from the configured names, and
without it the configured default (uploads: ``discord.commands.upload.account``, else the first
account; a person: the first account). The commands themselves live in ``discord.commands``;
these are the same commands with the one option more."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import discord
from discord import app_commands
from discord.app_commands import locale_str

from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, Words, say
from sidecar.targets.discord.safe import safe_text

MAX_CHOICES = 25  # Discord's limit for autocomplete
PERSON_DESCRIPTION = locale_str("Look someone up in Immich")
UPLOAD_DESCRIPTION = locale_str("Upload photos or videos into Immich")
NAME_HELP = locale_str("The person's name in Immich")
DESCRIPTION_HELP = locale_str("A description for every uploaded file")
ACCOUNT_HELP = locale_str("Whose Immich library (default: the sidecar's default account)")


class AccountCommandsHost(Protocol):
    """What the account variants call (``discord.commands.ImmichGroup``)."""

    @property
    def account_names(self) -> tuple[str, ...]: ...

    async def person_lookup(
        self, interaction: discord.Interaction, name: str, account: str | None
    ) -> None: ...

    async def names_like(
        self, current: str, account: str | None
    ) -> list[app_commands.Choice[str]]: ...

    async def upload_files(
        self,
        interaction: discord.Interaction,
        attachments: Sequence[discord.Attachment | None],
        description: str | None,
        account: str | None,
    ) -> None: ...


def account_choices(names: Sequence[str], current: str) -> list[app_commands.Choice[str]]:
    """The configured accounts whose name holds what was typed (all of them for nothing)."""
    typed = current.strip().casefold()
    return [
        app_commands.Choice(name=name, value=name) for name in names if typed in name.casefold()
    ][:MAX_CHOICES]


def unknown_account(value: str, names: Sequence[str], words: Words = ENGLISH) -> str:
    """The reply to an account this sidecar does not have, in the member's language."""
    known = [safe_text(n) for n in names]
    return say(words, texts.UNKNOWN_ACCOUNT, {"name": safe_text(value), "accounts": known})


def account_commands(host: AccountCommandsHost) -> list[app_commands.Command[Any, Any, Any]]:
    """``person`` and ``upload`` with the ``account`` option, bound to ``host``."""

    @app_commands.command(name="person", description=PERSON_DESCRIPTION)
    @app_commands.describe(name=NAME_HELP, account=ACCOUNT_HELP)
    async def person(
        interaction: discord.Interaction, name: str, account: str | None = None
    ) -> None:
        await host.person_lookup(interaction, name, account)

    @person.autocomplete("name")
    async def person_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # Discord sends the options filled so far: the names of the account chosen, if any.
        chosen = getattr(interaction.namespace, "account", None)
        if chosen is not None and chosen not in host.account_names:
            return []
        return await host.names_like(current, chosen)

    @app_commands.command(name="upload", description=UPLOAD_DESCRIPTION)
    @app_commands.describe(description=DESCRIPTION_HELP, account=ACCOUNT_HELP)
    async def upload(
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
        account: str | None = None,
    ) -> None:
        files = (file1, file2, file3, file4, file5, file6, file7, file8, file9, file10)
        await host.upload_files(interaction, files, description, account)

    async def accounts(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return account_choices(host.account_names, current)

    person.autocomplete("account")(accounts)
    upload.autocomplete("account")(accounts)
    return [person, upload]
