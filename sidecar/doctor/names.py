"""``doctor``'s line for every name ``run`` looks up (people, album rules, upload albums), in
config order, through ``engine.planning`` as ``run`` does: doctor fails what ``run`` refuses."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.config.model import Settings
from sidecar.doctor.accounts import person_across
from sidecar.engine.accounts import Accounts
from sidecar.engine.planning import name_refs, resolve_name, rule_albums
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Album, AlbumSummary
from sidecar.ops.checks import Check, failed, passed

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

    checks = []
    for ref in name_refs(settings, bot=bot):
        if "all" not in granted and NAME_PERMISSIONS[ref.kind] not in granted:
            continue
        try:
            if ref.kind == "person" and accounts is not None:
                checks.append(await person_across(accounts, ref))
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
