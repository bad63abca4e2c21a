"""The people-link commands: ``/immich claim``, ``unclaim``, ``members`` and ``dm``.

A claim names an Immich person (autocomplete from Immich's people, hidden ones left out). With
``discord.claims: approval`` (the default) it waits in ``discord.members_channel`` for a member
holding one of ``discord.members_approvers`` to click Approve or Deny; with ``claims: open`` it
links at once. The config's links win: they are never claimable and cannot be unclaimed.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import discord
from discord import app_commands
from discord.app_commands import locale_str

from sidecar.clock import utc_now
from sidecar.discord.buttons import (
    NO_MENTIONS,
    MembersHost,
    answer,
    claim_view,
    has_role,
)
from sidecar.discord.speech import member_words, reply_text
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.store.members import Claim
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person, is_immich_id
from sidecar.immich.permissions import CLAIMS
from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, Words, say
from sidecar.messages.texts import Text
from sidecar.targets.discord.safe import safe_text

log = logging.getLogger(__name__)

MAX_CHOICES = 25


def _shown(name: str, words: Words) -> str:
    return safe_text(name) or say(words, texts.NO_NAME, {})


def link_line(link: Link, status: str, words: Words = ENGLISH) -> str:
    text = texts.LINK_CONFIG if link.source == "config" else texts.LINK_CLAIMED
    values = {
        "name": _shown(link.person_name, words),
        "member": f"<@{link.user_id}>",
        "status": status,
    }
    line = say(words, text, values)
    return line + (f"\n  ⚠️ {safe_text(link.problem)}" if link.problem else "")


def _say(interaction: discord.Interaction, host: MembersHost, text: Text, **values: Any) -> str:
    return reply_text(interaction, host.settings, text, **values)


def member_commands(host: MembersHost) -> list[app_commands.Command[Any, Any, Any]]:
    """The four commands, bound to the bot (its settings, Immich client and directory)."""

    @app_commands.command(
        name="claim", description=locale_str("Link your Discord account to you in Immich")
    )
    @app_commands.describe(name=locale_str("Your name in Immich"))
    async def claim(interaction: discord.Interaction, name: str) -> None:
        await _guarded(interaction, "claim", _claim(host, interaction, name))

    @claim.autocomplete("name")
    async def claim_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await _choices(host, current)

    @app_commands.command(
        name="unclaim", description=locale_str("Remove the link between you and Immich")
    )
    async def unclaim(interaction: discord.Interaction) -> None:
        await _guarded(interaction, "unclaim", _unclaim(host, interaction))

    @app_commands.command(name="members", description=locale_str("Who is linked to whom in Immich"))
    async def members(interaction: discord.Interaction) -> None:
        await _guarded(interaction, "members", _members(host, interaction))

    @app_commands.command(name="dm", description=locale_str("Turn your spotted DMs off or on"))
    @app_commands.describe(
        mode=locale_str("off: no more DMs when you are in a new photo; on: DMs again")
    )
    async def dm(interaction: discord.Interaction, mode: Literal["off", "on"]) -> None:
        await _guarded(interaction, "dm", _dm(host, interaction, mode == "on"))

    return [claim, unclaim, members, dm]


async def _guarded(interaction: discord.Interaction, name: str, work: Any) -> None:
    try:
        await work
    except ImmichPermissionError:
        log.warning("%s", CLAIMS.off_sentence(()))
        settings = getattr(interaction.client, "settings", None)
        words = member_words(interaction, settings) if settings is not None else ENGLISH
        await answer(interaction, say(words, texts.SORRY_OFF, {"reason": CLAIMS.off_sentence(())}))
    except Exception:
        log.exception("/immich %s failed", name)
        settings = getattr(interaction.client, "settings", None)
        words = member_words(interaction, settings) if settings is not None else ENGLISH
        await answer(interaction, say(words, texts.SORRY, {}))


def _directory(host: MembersHost) -> MemberDirectory:
    assert host.directory is not None  # the commands exist only with a directory
    return host.directory


async def _choices(host: MembersHost, current: str) -> list[app_commands.Choice[str]]:
    if not current.strip():
        return []
    directory = _directory(host)
    try:
        people = await host.members_immich.search_person(current.strip())
    except Exception as error:
        log.warning("claim autocomplete failed: %s", type(error).__name__)
        return []
    taken = {link.person_id for link in directory.links()}
    choices = [
        app_commands.Choice(name=p.name[:100], value=p.id)
        for p in people
        if p.name and not p.is_hidden and p.id not in taken
    ]
    return choices[:MAX_CHOICES]


async def _find(host: MembersHost, value: str) -> Person | None:
    """The person picked from the list (an id), or typed by name (exact, any case)."""
    if is_immich_id(value):
        person = await host.members_immich.person(value.lower())
        return person if person is not None and not person.is_hidden else None
    wanted = value.strip().casefold()
    people = await host.members_immich.search_person(value.strip())
    return next((p for p in people if p.name.casefold() == wanted and not p.is_hidden), None)


async def _claim(host: MembersHost, interaction: discord.Interaction, value: str) -> None:
    directory = _directory(host)
    config = host.settings.discord.members
    if not config.claims_possible:
        await answer(interaction, _say(interaction, host, texts.CLAIMS_NOT_SET_UP))
        return
    person = await _find(host, value)
    if person is None:
        await answer(
            interaction, _say(interaction, host, texts.CLAIM_NO_ONE, name=safe_text(value))
        )
        return
    user = interaction.user.id
    refusal = directory.claim_refusal(user, person.id)
    if refusal is not None:
        await answer(interaction, _say(interaction, host, texts.SORRY_OFF, reason=refusal))
        return
    words = member_words(interaction, host.settings)
    open_claims = config.claims == "open"
    directory.store.put_claim(
        Claim(user, person.id, person.name, "approved" if open_claims else "pending", utc_now())
    )
    if open_claims:
        log.info("Discord member %s claimed %s (claims: open)", user, person.id)
        name = _shown(person.name, words)
        await answer(interaction, say(words, texts.CLAIM_LINKED, {"name": name}))
        return
    server = Words(host.settings.locale, host.settings.timezone)  # what approvers read
    if not await _ask_approvers(interaction, config.channel_id, user, person, server):
        directory.store.drop_claim(user, person.id, pending=True)
        await answer(interaction, say(words, texts.CLAIM_NOT_POSTED, {}))
        return
    values = {"name": _shown(person.name, words), "channel": f"<#{config.channel_id}>"}
    await answer(interaction, say(words, texts.CLAIM_WAITS, values))


async def _ask_approvers(
    interaction: discord.Interaction,
    channel_id: int | None,
    user: int,
    person: Person,
    words: Words,
) -> bool:
    client = interaction.client
    channel: Any = client.get_channel(channel_id) if channel_id else None
    try:
        if channel is None and channel_id:
            channel = await client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise LookupError("not a text channel")
        values = {"member": f"<@{user}>", "name": _shown(person.name, words)}
        await channel.send(
            say(words, texts.CLAIM_REQUEST, values),
            view=claim_view(user, person.id, words),
            allowed_mentions=NO_MENTIONS,
        )
    except (discord.HTTPException, LookupError) as error:
        log.error(
            "claims cannot be posted to discord.members_channel %s (%s): give the bot View "
            "Channel and Send Messages there",
            channel_id,
            getattr(error, "status", None) or error,
        )
        return False
    return True


async def _unclaim(host: MembersHost, interaction: discord.Interaction) -> None:
    directory = _directory(host)
    user = interaction.user.id
    link = directory.link_of(user)
    if link is not None and link.source == "config":
        await answer(interaction, _say(interaction, host, texts.UNCLAIM_CONFIG))
        return
    if directory.store.drop_claim(user):
        log.info("Discord member %s removed their people link", user)
        await answer(interaction, _say(interaction, host, texts.UNCLAIM_DONE))
        return
    await answer(interaction, _say(interaction, host, texts.NO_LINK))


async def _members(host: MembersHost, interaction: discord.Interaction) -> None:
    directory = _directory(host)
    await interaction.response.defer(ephemeral=True, thinking=True)
    await directory.check_people(host.members_immich)
    user = interaction.user.id
    sees_all = has_role(interaction, host.settings.discord.members.approvers)
    links = [link for link in directory.links() if sees_all or link.user_id == user]
    words = member_words(interaction, host.settings)
    lines = [link_line(link, directory.dm_status(link.user_id), words) for link in links]
    pending = [c for c in directory.pending() if sees_all or c.user_id == user]
    lines += [
        say(
            words,
            texts.LINK_PENDING,
            {"name": _shown(c.person_name, words), "member": f"<@{c.user_id}>"},
        )
        for c in pending
    ]
    if not lines:
        lines = [say(words, texts.NO_LINKS if sees_all else texts.NO_LINK_HINT, {})]
    await answer(interaction, "\n".join(lines)[:2000])


async def _dm(host: MembersHost, interaction: discord.Interaction, on: bool) -> None:
    directory = _directory(host)
    user = interaction.user.id
    directory.set_dms(user, on)
    log.info("Discord member %s turned spotted DMs %s", user, "on" if on else "off")
    linked = directory.link_of(user) is not None
    text = _say(interaction, host, texts.DMS_ON if on else texts.DMS_OFF)
    if not linked:
        text += " " + _say(interaction, host, texts.DMS_NO_LINK)
    await answer(interaction, text)
