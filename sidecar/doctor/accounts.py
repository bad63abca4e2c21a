"""``doctor`` with several Immich accounts: each account's key, and no two keys of one user
(where each person name was found is said with the other names, ``doctor.names``)."""

from __future__ import annotations

from sidecar.config.model import Settings
from sidecar.engine.accounts import Accounts, check_keys
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.immich.errors import ImmichError
from sidecar.ops.checks import Check, failed, passed


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
