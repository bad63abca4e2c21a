"""The people-link commands: ``/immich claim``, ``unclaim``, ``members`` and ``dm``.

A claim names an Immich person of one account (autocomplete from every account's people,
hidden ones left out, the account shown where a name repeats); a member claims one person per
account. With ``discord.claims: approval`` (the default) it waits in ``discord.members_channel``
for a member holding one of ``discord.members_approvers`` to click Approve or Deny; with
``claims: open`` it links at once. The config's links win: they are never claimable and cannot
be unclaimed.
"""

from __future__ import annotations

import logging
from collections import Counter
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
from sidecar.discord.speech import member_words
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.store.members import Claim
from sidecar.immich.errors import ImmichPermissionError
from sidecar.immich.models import Person, is_immich_id
from sidecar.immich.permissions import CLAIMS
from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, say
from sidecar.messages.texts import Text
from sidecar.targets.discord.safe import safe_text

log = logging.getLogger(__name__)

MAX_CHOICES = 25


def _say(interaction: discord.Interaction, text: Text, **values: Any) -> str:
    """A built-in text in the member's language (the config's, where the client's is not
    spoken)."""
    settings = getattr(interaction.client, "settings", None)
    words = member_words(interaction, settings) if settings is not None else ENGLISH
    return say(words, text, values)


def _shown(name: str) -> str:
    return f"**{safe_text(name or 'someone without a name')}**"


def link_line(link: Link, status: str, *, several: bool = False) -> str:
    source = "set in the config" if link.source == "config" else "claimed"
    where = f" in {safe_text(link.account)}" if several and link.account else ""
    line = f"{_shown(link.person_name)}{where} ↔ <@{link.user_id}> ({source}; {status})"
    return line + (f"\n  ⚠️ {safe_text(link.problem)}" if link.problem else "")


def _labelled(name: str, account: str | None) -> str:
    """A choice's name (at most 100 characters), with its account when the name repeats."""
    suffix = f" ({account})" if account else ""
    return name[: 100 - len(suffix)] + suffix


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
        await answer(
            interaction, _say(interaction, texts.SORRY_OFF, reason=CLAIMS.off_sentence(()))
        )
    except Exception:
        log.exception("/immich %s failed", name)
        await answer(interaction, "Sorry, something went wrong on our side; see the sidecar's log.")


def _directory(host: MembersHost) -> MemberDirectory:
    assert host.directory is not None  # the commands exist only with a directory
    return host.directory


async def _choices(host: MembersHost, current: str) -> list[app_commands.Choice[str]]:
    if not current.strip():
        return []
    taken = {link.person_id for link in _directory(host).links()}
    found: dict[str, tuple[str, Person]] = {}  # person id -> (account, person)
    for account, immich in host.members_accounts.items():
        try:
            people = await immich.search_person(current.strip())
        except Exception as error:
            log.warning("claim autocomplete failed in %s: %s", account, type(error).__name__)
            continue
        for p in people:
            if p.name and not p.is_hidden and p.id not in taken:
                found.setdefault(p.id, (account, p))
    repeated = Counter(p.name.casefold() for _, p in found.values())
    several = len(host.members_accounts) > 1
    choices = [
        app_commands.Choice(
            name=_labelled(
                p.name, account if several and repeated[p.name.casefold()] > 1 else None
            ),
            value=p.id,
        )
        for account, p in found.values()
    ]
    return choices[:MAX_CHOICES]


async def _find(host: MembersHost, value: str) -> list[tuple[str, Person]]:
    """The person picked from the list (an id, asked in each account until one has it), or
    typed by name (exact, any case: every account's person of that name)."""
    found: list[tuple[str, Person]] = []
    wanted = value.strip().casefold()
    for account, immich in host.members_accounts.items():
        if is_immich_id(value):
            person = await immich.person(value.lower())
            if person is not None and not person.is_hidden:
                return [(account, person)]
            continue
        people = await immich.search_person(value.strip())
        found += [(account, p) for p in people if p.name.casefold() == wanted and not p.is_hidden]
    return found


async def _claim(host: MembersHost, interaction: discord.Interaction, value: str) -> None:
    directory = _directory(host)
    config = host.settings.discord.members
    if not config.claims_possible:
        await answer(interaction, _say(interaction, texts.CLAIMS_NOT_SET_UP))
        return
    found = await _find(host, value)
    if not found:
        await answer(interaction, _say(interaction, texts.CLAIM_NO_ONE, name=safe_text(value)))
        return
    if len(found) > 1:
        where = ", ".join(f"{_shown(p.name)} in {safe_text(a)}" for a, p in found)
        await answer(
            interaction,
            f"Several people are called {safe_text(value)} ({where}): pick one from the list "
            "that opens as you type the name.",
        )
        return
    [(account, person)] = found
    user = interaction.user.id
    refusal = directory.claim_refusal(user, person.id, account)
    if refusal is not None:
        await answer(interaction, _say(interaction, texts.SORRY_OFF, reason=refusal))
        return
    open_claims = config.claims == "open"
    state = "approved" if open_claims else "pending"
    directory.store.put_claim(
        Claim(user, person.id, person.name, state, utc_now(), account=account)
    )
    shown = _shown(person.name) + (
        f" ({safe_text(account)})" if len(host.members_accounts) > 1 else ""
    )
    if open_claims:
        log.info("Discord member %s claimed %s of %s (claims: open)", user, person.id, account)
        await answer(interaction, f"You are now linked to {shown} in Immich.")
        return
    if not await _ask_approvers(interaction, config.channel_id, user, person, shown):
        directory.store.drop_claim(user, person.id, pending=True)
        await answer(
            interaction,
            _say(interaction, texts.CLAIM_NOT_POSTED),
        )
        return
    await answer(
        interaction, f"Your claim to be {shown} waits for an approver in <#{config.channel_id}>."
    )


async def _ask_approvers(
    interaction: discord.Interaction,
    channel_id: int | None,
    user: int,
    person: Person,
    shown: str,
) -> bool:
    client = interaction.client
    channel: Any = client.get_channel(channel_id) if channel_id else None
    try:
        if channel is None and channel_id:
            channel = await client.fetch_channel(channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            raise LookupError("not a text channel")
        await channel.send(
            f"<@{user}> claims to be {shown} in Immich. Approve to link them: "
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
    if any(link.source == "config" for link in directory.links_of(user)):
        await answer(interaction, _say(interaction, texts.UNCLAIM_CONFIG))
        return
    if directory.store.drop_claim(user):
        log.info("Discord member %s removed their people links", user)
        await answer(interaction, "Your links to Immich are removed; no more spotted DMs.")
        return
    await answer(interaction, _say(interaction, texts.NO_LINK))


async def _members(host: MembersHost, interaction: discord.Interaction) -> None:
    directory = _directory(host)
    await interaction.response.defer(ephemeral=True, thinking=True)
    await directory.check_people(host.members_accounts)
    user = interaction.user.id
    sees_all = has_role(interaction, host.settings.discord.members.approvers)
    several = len(host.members_accounts) > 1
    links = [link for link in directory.links() if sees_all or link.user_id == user]
    lines = [link_line(link, directory.dm_status(link.user_id), several=several) for link in links]
    pending = [c for c in directory.pending() if sees_all or c.user_id == user]
    lines += [
        f"{_shown(c.person_name)}{f' in {safe_text(c.account)}' if several else ''} ← "
        f"<@{c.user_id}> (claim waiting for approval)"
        for c in pending
    ]
    if not lines:
        lines = [_say(interaction, texts.NO_LINKS if sees_all else texts.NO_LINK_HINT)]
    await answer(interaction, "\n".join(lines)[:2000])


async def _dm(host: MembersHost, interaction: discord.Interaction, on: bool) -> None:
    directory = _directory(host)
    user = interaction.user.id
    directory.set_dms(user, on)
    log.info("Discord member %s turned spotted DMs %s", user, "on" if on else "off")
    linked = bool(directory.links_of(user))
    text = _say(interaction, texts.DMS_ON if on else texts.DMS_OFF)
    if not linked:
        text += " " + _say(interaction, texts.DMS_NO_LINK)
    await answer(interaction, text)
