"""``doctor``'s push line: with ``push:`` configured, is the Immich workflow there, enabled and
on the right trigger (``push.setup.workflow_check``, which ``push status`` shows too)."""

from __future__ import annotations

from sidecar.config.model import Settings
from sidecar.immich.client import ImmichClient
from sidecar.ops.checks import Check
from sidecar.push.setup import workflow_check


async def push_checks(settings: Settings, client: ImmichClient) -> list[Check]:
    """Nothing when push is off; else the workflow line."""
    if settings.push is None:
        return []
    return [await workflow_check(settings, client)]
