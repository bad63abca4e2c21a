"""``doctor``'s checks of the people links (issue 19): the names of ``discord.members`` in
Immich, and the claims channel the bot must post Approve / Deny requests in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import discord

from sidecar.config.model import Settings
from sidecar.doctor.names import Places, people_places
from sidecar.engine.accounts import Accounts
from sidecar.engine.planning import PeopleSearch
from sidecar.engine.rules.accounts import ambiguity
from sidecar.engine.rules.matching import exact_people
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Person, is_immich_id
from sidecar.ops.checks import Check, failed, passed


async def member_name_checks(
    settings: Settings, client: ImmichClient, accounts: Accounts | None = None
) -> list[Check]:
    """Each name of ``discord.members`` must be at least one Immich person in some account (as
    rule names, aliases included); the line says whom it links in each account."""
    checks = []
    places = people_places(client, accounts)
    search = PeopleSearch(settings.people_aliases)
    for name, user in settings.discord.members.links:
        if is_immich_id(name):
            checks.append(await _id_check(places, name))
            continue
        try:
            answers = {account: await search.answers(c, name) for account, c in places}
        except ImmichError as err:
            checks.append(failed(f"could not look {name!r} up in Immich ({err})", "try again"))
            continue
        found = {a: exact_people(name, answers[a], settings.people_aliases) for a in answers}
        if not any(found.values()):
            everyone = sorted({p.name for people in answers.values() for p in people if p.name})
            hint = f" (similar: {', '.join(repr(n) for n in everyone[:8])})" if everyone else ""
            checks.append(
                failed(
                    f"discord.members: no person called {name!r} in Immich{hint}",
                    "correct the name in discord.members (or add Immich's name to "
                    "people_aliases), or use the person id",
                )
            )
            continue
        line = f"discord.members: {name!r} is linked to Discord member {user}"
        if len(places) > 1:
            line += " as " + ", ".join(
                f"{_names(people)} in {account}" for account, people in found.items() if people
            )
        several = [(a, people) for a, people in found.items() if len(people) > 1]
        advice = "; ".join(ambiguity(name, people, a) for a, people in several)
        checks.append(Check(True, line, advice))
    return checks


def _names(people: Sequence[Person]) -> str:
    return " and ".join(repr(p.name) for p in people)


async def _id_check(places: Places, person_id: str) -> Check:
    for _account, client in places:
        if await client.person(person_id.lower()) is not None:
            return passed(f"discord.members: person {person_id} is in Immich")
    return failed(
        f"discord.members: no person {person_id} in Immich (deleted or merged?)",
        "link the person by name, or by the id Immich shows now",
    )


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
