"""``doctor``'s checks of the people links (issue 19): the names of ``discord.members`` in
Immich, and the claims channel the bot must post Approve / Deny requests in."""

from __future__ import annotations

from typing import Any

import aiohttp
import discord

from sidecar.config.model import Settings
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import is_immich_id
from sidecar.ops.checks import Check, failed, passed


async def member_name_checks(settings: Settings, client: ImmichClient) -> list[Check]:
    """Each name of ``discord.members`` must be exactly one Immich person (as rule names)."""
    checks = []
    for name, user in settings.discord.members.links:
        if is_immich_id(name):
            person = await client.person(name.lower())
            checks.append(
                passed(f"discord.members: person {name} is in Immich")
                if person is not None
                else failed(
                    f"discord.members: no person {name} in Immich (deleted or merged?)",
                    "link the person by name, or by the id Immich shows now",
                )
            )
            continue
        try:
            found = await client.search_person(name, with_hidden=True)
        except ImmichError as err:
            checks.append(failed(f"could not look {name!r} up in Immich ({err})", "try again"))
            continue
        exact = [p for p in found if p.name.casefold() == name.casefold()]
        if len(exact) == 1:
            checks.append(passed(f"discord.members: {name!r} is linked to Discord member {user}"))
        else:
            similar = sorted({p.name for p in found if p.name})[:8]
            hint = f" (similar: {', '.join(repr(n) for n in similar)})" if similar else ""
            checks.append(
                failed(
                    f"discord.members: {len(exact) or 'no'} person called {name!r} in Immich{hint}",
                    "correct the name in discord.members, or use the person id",
                )
            )
    return checks


async def claims_channel_check(settings: Settings, client: discord.Client) -> list[Check]:
    """The bot must see ``discord.members_channel`` and send there (claims wait in it)."""
    channel_id = settings.discord.members.channel_id
    if channel_id is None or settings.discord.members.claims == "open":
        return []
    where = f"discord.members_channel ({channel_id})"
    channel: Any = client.get_channel(channel_id)
    if channel is None:
        try:
            channel = await client.fetch_channel(channel_id)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as err:
            status = getattr(err, "status", type(err).__name__)
            return [
                failed(
                    f"{where}: the bot cannot see the channel ({status})",
                    "check the id and give the bot View Channel there",
                )
            ]
    me = getattr(getattr(channel, "guild", None), "me", None)
    if me is None or not isinstance(channel, discord.abc.GuildChannel):
        return [failed(f"{where}: not a text channel of a server", "use a text channel's id")]
    permissions = channel.permissions_for(me)
    if not (permissions.view_channel and permissions.send_messages):
        return [
            failed(
                f"{where}: the bot lacks View Channel or Send Messages in #{channel.name}; claims "
                "could not be posted for approval",
                "allow both for the bot in the channel's settings > Permissions",
            )
        ]
    return [passed(f"{where}: the bot can post claims for approval in #{channel.name}")]
