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

from sidecar.clock import utc_now
from sidecar.discord.buttons import (
    NO_MENTIONS,
    MembersHost,
    answer,
    claim_view,
    has_role,
)
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.store.members import Claim
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person, is_immich_id
from sidecar.immich.permissions import CLAIMS
from sidecar.targets.discord.safe import safe_text

log = logging.getLogger(__name__)

MAX_CHOICES = 25
NOT_SET_UP = (
    "Claims are not set up on this server: the sidecar's config needs discord.members_channel "
    "and discord.members_approvers (or claims: open)."
)


def _shown(name: str) -> str:
    return f"**{safe_text(name or 'someone without a name')}**"


def link_line(link: Link, status: str) -> str:
    source = "set in the config" if link.source == "config" else "claimed"
    line = f"{_shown(link.person_name)} ↔ <@{link.user_id}> ({source}; {status})"
    return line + (f"\n  ⚠️ {safe_text(link.problem)}" if link.problem else "")


def member_commands(host: MembersHost) -> list[app_commands.Command[Any, Any, Any]]:
    """The four commands, bound to the bot (its settings, Immich client and directory)."""

    @app_commands.command(name="claim", description="Link your Discord account to you in Immich")
    @app_commands.describe(name="Your name in Immich")
    async def claim(interaction: discord.Interaction, name: str) -> None:
        await _guarded(interaction, "claim", _claim(host, interaction, name))

    @claim.autocomplete("name")
    async def claim_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await _choices(host, current)

    @app_commands.command(name="unclaim", description="Remove the link between you and Immich")
    async def unclaim(interaction: discord.Interaction) -> None:
        await _guarded(interaction, "unclaim", _unclaim(host, interaction))

    @app_commands.command(name="members", description="Who is linked to whom in Immich")
    async def members(interaction: discord.Interaction) -> None:
        await _guarded(interaction, "members", _members(host, interaction))

    @app_commands.command(name="dm", description="Turn your spotted DMs off or on")
    @app_commands.describe(mode="off: no more DMs when you are in a new photo; on: DMs again")
    async def dm(interaction: discord.Interaction, mode: Literal["off", "on"]) -> None:
        await _guarded(interaction, "dm", _dm(host, interaction, mode == "on"))

    return [claim, unclaim, members, dm]


async def _guarded(interaction: discord.Interaction, name: str, work: Any) -> None:
    try:
        await work
    except ImmichPermissionError:
        log.warning("%s", CLAIMS.off_sentence(()))
        await answer(interaction, f"Sorry, {CLAIMS.off_sentence(())}.")
    except Exception:
        log.exception("/immich %s failed", name)
        await answer(interaction, "Sorry, something went wrong on our side; see the sidecar's log.")


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
        await answer(interaction, NOT_SET_UP)
        return
    person = await _find(host, value)
    if person is None:
        await answer(interaction, f"No one called {safe_text(value)} in Immich to claim.")
        return
    user = interaction.user.id
    refusal = directory.claim_refusal(user, person.id)
    if refusal is not None:
        await answer(interaction, f"Sorry, {refusal}.")
        return
    open_claims = config.claims == "open"
    directory.store.put_claim(
        Claim(user, person.id, person.name, "approved" if open_claims else "pending", utc_now())
    )
    if open_claims:
        log.info("Discord member %s claimed %s (claims: open)", user, person.id)
        await answer(interaction, f"You are now linked to {_shown(person.name)} in Immich.")
        return
    if not await _ask_approvers(interaction, config.channel_id, user, person):
        directory.store.drop_claim(user, person.id, pending=True)
        await answer(
            interaction,
            "Sorry, the claim could not be posted for approval; the sidecar's log says why.",
        )
        return
    await answer(
        interaction,
        f"Your claim to be {_shown(person.name)} waits for an approver in <#{config.channel_id}>.",
    )


async def _ask_approvers(
    interaction: discord.Interaction, channel_id: int | None, user: int, person: Person
) -> bool:
    client = interaction.client
    channel: Any = client.get_channel(channel_id) if channel_id else None
    try:
        if channel is None and channel_id:
            channel = await client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise LookupError("not a text channel")
        await channel.send(
            f"<@{user}> claims to be {_shown(person.name)} in Immich. Approve to link them: "
            "they will be told by DM when they are in a new photo.",
            view=claim_view(user, person.id),
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
        await answer(
            interaction, "Your link is set in the sidecar's config; ask its admin to remove it."
        )
        return
    if directory.store.drop_claim(user):
        log.info("Discord member %s removed their people link", user)
        await answer(interaction, "Your link to Immich is removed; no more spotted DMs.")
        return
    await answer(interaction, "You have no link to Immich.")


async def _members(host: MembersHost, interaction: discord.Interaction) -> None:
    directory = _directory(host)
    await interaction.response.defer(ephemeral=True, thinking=True)
    await directory.check_people(host.members_immich)
    user = interaction.user.id
    sees_all = has_role(interaction, host.settings.discord.members.approvers)
    links = [link for link in directory.links() if sees_all or link.user_id == user]
    lines = [link_line(link, directory.dm_status(link.user_id)) for link in links]
    pending = [c for c in directory.pending() if sees_all or c.user_id == user]
    lines += [
        f"{_shown(c.person_name)} ← <@{c.user_id}> (claim waiting for approval)" for c in pending
    ]
    if not lines:
        lines = ["No links yet." if sees_all else "You have no link to Immich (/immich claim)."]
    await answer(interaction, "\n".join(lines)[:2000])


async def _dm(host: MembersHost, interaction: discord.Interaction, on: bool) -> None:
    directory = _directory(host)
    user = interaction.user.id
    directory.set_dms(user, on)
    log.info("Discord member %s turned spotted DMs %s", user, "on" if on else "off")
    linked = directory.link_of(user) is not None
    text = "Spotted DMs are on." if on else "Spotted DMs are off; /immich dm on turns them back on."
    if not linked:
        text += " (You have no link to Immich yet: /immich claim.)"
    await answer(interaction, text)
