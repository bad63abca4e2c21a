"""``doctor``'s line for every name ``run`` looks up (people, album rules, upload albums), in
config order, through ``engine.planning`` as ``run`` does: doctor fails what ``run`` refuses.

A person name is looked up in every account with its ``people_aliases``: the line says which
account's person it is (``dad, mum (as Oma)``), and a name that means several people in one
account passes (``run`` watches each) with the advice to merge them."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.config.model import PeopleAliases, Settings
from sidecar.engine.accounts import Accounts
from sidecar.engine.planning import (
    NameRef,
    PeopleSearch,
    name_refs,
    resolve_name,
    rule_albums,
)
from sidecar.engine.rules.accounts import ambiguity
from sidecar.engine.rules.matching import exact_people, resolve_people
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Album, AlbumSummary, Person
from sidecar.ops.checks import Check, failed, passed

PERSON_FIX = (
    "name the person in Immich (People > the face > add a name) in one of the accounts, or "
    "correct the name in the config"
)

NAME_FIXES = {
    "person": "name the person in Immich (People > the face > add a name), or correct the name "
    "in the config",
    "album": "create the album in Immich or share it with the key's user, or correct the name in "
    "the rule",
    "upload album": "create the album in Immich or share it with the key's user, or correct "
    "the album's name in the config",
}
# The permission each kind of look-up needs; without it the feature's own line says so.
NAME_PERMISSIONS = {"person": "person.read", "album": "album.read", "upload album": "album.read"}


async def name_checks(
    settings: Settings,
    client: ImmichClient,
    granted: frozenset[str],
    *,
    bot: bool,
    accounts: Accounts | None = None,
) -> list[Check]:
    """One line per name ``run`` resolves, in config order, looked up as ``run`` does: with
    several accounts, people and album rules across them and upload albums in the account
    uploads go into."""
    listed: dict[str, Sequence[Album | AlbumSummary]] = {}

    async def albums(kind: str) -> Sequence[Album | AlbumSummary]:
        if kind not in listed:
            if kind == "upload album":
                uploads = (
                    client if accounts is None else accounts.get(_upload_account(settings)).client
                )
                listed[kind] = await uploads.list_albums()
            else:
                listed[kind] = await rule_albums(client if accounts is None else accounts.albums())
        return listed[kind]

    places = people_places(client, accounts)
    search = PeopleSearch(settings.people_aliases)
    checks = []
    for ref in name_refs(settings, bot=bot):
        if "all" not in granted and NAME_PERMISSIONS[ref.kind] not in granted:
            continue
        try:
            if ref.kind == "person":
                checks.append(await person_check(places, ref, search, settings.people_aliases))
                continue
            found = await resolve_name(client, ref, albums)
        except ImmichError as err:
            checks.append(
                failed(
                    f"could not look {ref.kind} {ref.name!r} up in Immich ({err})",
                    "run doctor again when Immich answers",
                )
            )
            continue
        if found.immich_id is None:
            checks.append(failed(f"{ref.where}: {found.problem}", NAME_FIXES[ref.kind]))
        elif ref.kind == "upload album":
            checks.append(passed(f"upload album {ref.name!r} exists in Immich"))
        else:
            checks.append(passed(f"{ref.kind} {ref.name!r} is Immich {ref.kind} {found.immich_id}"))
    return checks


def _upload_account(settings: Settings) -> str | None:
    return settings.discord.upload.account


Places = Sequence[tuple[str, ImmichClient]]  # (account name, its client); "" for a single key


def people_places(client: ImmichClient, accounts: Accounts | None) -> Places:
    """Where people are looked up: every account, or the one client."""
    if accounts is None or len(accounts) < 2:
        return [("", client)]
    return [(account.name, account.client) for account in accounts]


async def person_check(
    places: Places, ref: NameRef, search: PeopleSearch, aliases: PeopleAliases
) -> Check:
    """One line for a person name, as ``run`` resolves it: found (exactly, or as one of its
    aliases) in at least one account each rule or post naming it watches. Raises ImmichError
    when Immich cannot answer."""
    answers = {name: await search.answers(client, ref.name) for name, client in places}
    found = {name: exact_people(ref.name, answers[name], aliases) for name in answers}
    holders = [name for name, people in found.items() if people]
    if not holders:
        everyone = [p for people in answers.values() for p in people]
        problems: list[str] = []
        resolve_people(ref.name, lambda _name: everyone, ref.where, problems, aliases)
        problem = problems[0].removeprefix(f"{ref.where}: ")
        if len(places) > 1:
            problem = problem.replace(" in Immich", " in any Immich account")
        return failed(
            f"{ref.where}: {problem}", PERSON_FIX if len(places) > 1 else NAME_FIXES["person"]
        )
    for where, watched in ref.narrowed:
        if not set(watched) & set(holders):
            return failed(
                f"{where}: {ref.name!r} is only in account {', '.join(holders)}, which this "
                f"does not watch (accounts: {', '.join(watched)})",
                "add the account to accounts:, or correct the name",
            )
    several = {name: people for name, people in found.items() if len(people) > 1}
    advice = "; ".join(ambiguity(ref.name, people, name) for name, people in several.items())
    if len(places) == 1:
        [people] = found.values()
        shown = ", ".join(_person(ref.name, p) for p in people)
        word = "people" if len(people) > 1 else "person"
        return Check(True, f"person {ref.name!r} is Immich {word} {shown}", advice)
    missing = [name for name, _ in places if name not in holders]
    line = f"person {ref.name}: " + ", ".join(_in(ref.name, n, found[n]) for n in holders)
    return Check(True, line + (f"; not in {', '.join(missing)}" if missing else ""), advice)


def _person(name: str, person: Person) -> str:
    return person.id + (f" ({person.name!r})" if person.name.casefold() != name.casefold() else "")


def _in(name: str, account: str, people: Sequence[Person]) -> str:
    """``mum``, ``mum (as Oma <id>)`` or ``mum (2 people)``, as the start log says it."""
    if len(people) > 1:
        return f"{account} ({len(people)} people)"
    [person] = people
    if person.name.casefold() == name.casefold():
        return account
    return f"{account} (as {person.name} {person.id})"
