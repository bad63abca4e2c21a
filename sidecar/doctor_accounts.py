"""``doctor`` with several Immich accounts: each account's key, and where each person name of
the rules was found ("Grandma: dad, mum; not in leo")."""

from __future__ import annotations

import contextlib

from sidecar.config.model import Settings
from sidecar.engine.accounts import Accounts
from sidecar.engine.planning import resolve_account_rules
from sidecar.engine.rules import RuleResolutionError
from sidecar.immich.errors import ImmichError
from sidecar.ops.checks import Check, failed, passed
from sidecar.ops.metrics import Metrics


async def account_checks(settings: Settings) -> list[Check]:
    """Nothing with one account (``immich_checks`` covers it)."""
    if len(settings.immich.accounts) < 2:
        return []
    checks: list[Check] = []
    async with contextlib.AsyncExitStack() as stack:
        accounts = await Accounts.open(settings, Metrics(), stack)
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
            resolved = await resolve_account_rules(accounts, settings)
        except RuleResolutionError as err:
            fix = "name the person the same in each account's Immich, or correct the rule"
            return checks + [failed(problem, fix) for problem in err.problems]
        except ImmichError as err:
            return [*checks, failed(f"could not look people up ({err})", "run doctor again")]
    return checks + [passed(f"person {line}") for line in resolved.where_found()]
