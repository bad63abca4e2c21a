"""``doctor``'s push lines: with ``push:`` configured, is the Immich workflow there, enabled and
on the right trigger (``push.setup.workflow_check``, which ``push status`` shows too), under
every account (a workflow fires for its owner's uploads only)."""

from __future__ import annotations

from dataclasses import replace

from sidecar.config.model import Settings
from sidecar.engine.accounts import Accounts
from sidecar.immich.client import ImmichClient
from sidecar.ops.checks import Check
from sidecar.push.setup import workflow_check


async def push_checks(
    settings: Settings, client: ImmichClient, accounts: Accounts | None = None
) -> list[Check]:
    """Nothing when push is off; else the workflow line, one per account when there are
    several (``push, account mum: ...``)."""
    if settings.push is None:
        return []
    if accounts is None or len(accounts) < 2:
        return [await workflow_check(settings, client)]
    checks = []
    for account in accounts:
        check = await workflow_check(settings, account.client)
        named = check.line.replace("push:", f"push, account {account.name}:", 1)
        checks.append(replace(check, line=named))
    return checks
