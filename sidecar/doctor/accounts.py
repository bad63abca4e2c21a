"""``doctor`` with several Immich accounts: each account's key, and where each person name of
the config was found ("Grandma: dad, mum; not in leo"), looked up as ``run`` does."""

from __future__ import annotations

from sidecar.config.model import Settings
from sidecar.engine.accounts import Accounts, check_keys
from sidecar.engine.planning import NameRef, resolve_name
from sidecar.engine.posts.accounts import MergedAccounts
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import AlbumSummary
from sidecar.ops.checks import Check, failed, passed

PERSON_FIX = (
    "name the person in Immich (People > the face > add a name) in one of the accounts, or "
    "correct the name in the config"
)


async def account_checks(settings: Settings, accounts: Accounts | None) -> list[Check]:
    """Each account's key, and no two keys of one user. Nothing with one account
    (``immich_checks`` covers it); the people are checked with the other names."""
    if accounts is None or len(accounts) < 2:
        return []
    checks: list[Check] = []
    for account in accounts:
        try:
            await account.client.key_permissions()
        except ImmichError as err:
            checks.append(
                failed(
                    f"account {account.name}: Immich does not accept its key ({err})",
                    f"check immich.accounts.{account.name}.api_key (or api_key_file)",
                )
            )
            continue
        checks.append(passed(f"account {account.name}: Immich accepts its key"))
    if not all(c.ok for c in checks):
        return checks
    try:
        await check_keys(accounts, settings)
    except RuleResolutionError as err:
        fix = "give each account a key of its own Immich user"
        return checks + [failed(problem, fix) for problem in err.problems]
    except ImmichError as err:
        return [*checks, failed(f"could not ask Immich whose the keys are ({err})", "run again")]
    return checks


async def person_across(accounts: Accounts, ref: NameRef) -> Check:
    """One line for a person name across every account, as ``run`` resolves it (the posts'
    merged look-up): found in at least one account each rule or post naming it watches, and
    not two people of that name in one account. Raises ImmichError when Immich cannot answer."""
    merged = MergedAccounts([a.client for a in accounts])

    async def no_albums(_kind: str) -> list[AlbumSummary]:
        return []

    found = await resolve_name(merged, ref, no_albums)
    if found.immich_id is None:
        return failed(f"{ref.where}: {found.problem}", PERSON_FIX)
    holders = [accounts.names[i] for i in merged.holders(found.immich_id)]
    for where, watched in ref.narrowed:
        if not set(watched) & set(holders):
            return failed(
                f"{where}: {ref.name!r} is only in account {', '.join(holders)}, which this "
                f"does not watch (accounts: {', '.join(watched)})",
                "add the account to accounts:, or correct the name",
            )
    missing = [name for name in accounts.names if name not in holders]
    line = f"person {ref.name}: {', '.join(holders)}"
    return passed(line + (f"; not in {', '.join(missing)}" if missing else ""))
