"""``immich-sidecar push setup`` and ``push status``, and the doctor's push line.

The workflow belongs to the API key's user and fires only for that user's uploads, so setup
and status run under every configured account, each with its own key, and say per account what
they did or why not. The sidecar finds its workflow again by name, so running setup twice
changes nothing.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sidecar.clock import utc_now
from sidecar.config.loader import load_settings
from sidecar.config.model import PushSettings, Secret, Settings
from sidecar.engine.store.accounts import AccountStore
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store
from sidecar.immich.client import ImmichClient
from sidecar.immich.endpoints.workflows import CORE_PLUGIN, WEBHOOK_METHOD, Workflow
from sidecar.immich.errors import ImmichBadRequestError, ImmichError
from sidecar.immich.permissions import KEY_SETTINGS_HINT, PUSH_SETUP
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.checks import Check, failed, passed
from sidecar.ops.metrics import Metrics
from sidecar.push.receiver import PATH

WORKFLOW_NAME = "immich-sidecar push"
TRIGGER = "AssetMetadataExtraction"
DEFAULT_HOST = "immich-discord-sidecar"  # the service name in deploy/docker-compose.yml
NO_WEBHOOK_ON_2X = (
    "Immich {version} is 2.x: its workflows have no webhook action, so Immich cannot push to "
    "the sidecar (push needs Immich 3.x). The sidecar keeps polling, with fast polls while "
    "faces are recognised."
)
NO_WEBHOOK_STEP = (
    "Immich {version} cannot push: its core plugin {plugin} is not loaded, so its workflows "
    "have no webhook step ({method}). The official immich-server image ships the plugin; an "
    "image without plugins/{plugin} (Immich logs 'Failed to import plugin' at start) cannot "
    "push. Use the official image (or add the plugin to yours), restart Immich and run "
    "`immich-sidecar push setup` again. Until then the sidecar keeps polling, with fast checks "
    "for new uploads."
)
NOT_CONFIGURED = "push is off: add a push: block (listen, secret) to the config first"


@dataclass(frozen=True)
class Outcome:
    ok: bool
    lines: tuple[str, ...]


def default_url(push: PushSettings) -> str:
    return f"http://{DEFAULT_HOST}:{push.port}{PATH}"


def workflow_body(push: PushSettings, url: str) -> dict[str, Any]:
    """The sidecar's workflow as ``POST /workflows`` takes it (3.x)."""
    config = {
        "url": url,
        "method": "POST",
        "headerName": push.header,
        "headerValue": push.secret.reveal(),
    }
    return {
        "name": WORKFLOW_NAME,
        "description": "Tells immich-discord-sidecar about new uploads (made by push setup).",
        "trigger": TRIGGER,
        "enabled": True,
        "steps": [{"method": WEBHOOK_METHOD, "config": config}],
    }


def _same(workflow: Workflow, body: dict[str, Any]) -> bool:
    steps = [{"method": s.get("method"), "config": s.get("config")} for s in workflow.steps]
    return bool(
        workflow.trigger == body["trigger"]
        and workflow.enabled == body["enabled"]
        and steps == body["steps"]
    )


def _url_of(workflow: Workflow) -> str:
    for step in workflow.steps:
        config = step.get("config")
        if step.get("method") == WEBHOOK_METHOD and isinstance(config, dict):
            return str(config.get("url", "?"))
    return "no webhook step"


async def no_webhook_step(client: ImmichClient) -> str:
    """What to say when Immich does not know the webhook step (its core plugin is missing)."""
    version = await client.version()
    return NO_WEBHOOK_STEP.format(version=version, plugin=CORE_PLUGIN, method=WEBHOOK_METHOD)


def unknown_method(err: ImmichError) -> bool:
    """Immich refused a workflow because no loaded plugin has its step (3.1's answer)."""
    return isinstance(err, ImmichBadRequestError) and err.message.startswith("Unknown method")


@dataclass(frozen=True)
class Unusable:
    """Why push cannot work with this server and key: a short line and what to do."""

    line: str
    why: str


async def _usable(client: ImmichClient, needed: tuple[str, ...]) -> Unusable | None:
    """Why the workflows cannot be used with this server and key; None when they can. Whether
    the webhook step exists is asked only of a key that may read plugins (``plugin.read``)."""
    version = await client.version()
    if version.major < 3:
        return Unusable(f"push: Immich {version} has no webhook action",
                        NO_WEBHOOK_ON_2X.format(version=version))  # fmt: skip
    granted = await client.key_permissions()
    missing = [p for p in needed if "all" not in granted and p not in granted]
    if missing:
        return Unusable(
            "push: the Immich workflow cannot be checked",
            f"the Immich API key lacks {', '.join(missing)}; add "
            f"{'it' if len(missing) == 1 else 'them'} to the key ({KEY_SETTINGS_HINT})",
        )
    if ("all" in granted or "plugin.read" in granted) and (
        WEBHOOK_METHOD not in await client.plugin_methods()
    ):
        return Unusable(
            f"push: Immich {version} has no webhook step ({CORE_PLUGIN} is not loaded)",
            await no_webhook_step(client),
        )
    return None


async def setup(settings: Settings, client: ImmichClient, url: str | None) -> Outcome:
    """Create or update the sidecar's workflow for the key's user."""
    push = settings.push
    if push is None:
        return Outcome(False, (NOT_CONFIGURED,))
    problem = await _usable(client, PUSH_SETUP.permissions)
    if problem is not None:
        return Outcome(False, (problem.why,))
    body = workflow_body(push, url or default_url(push))
    try:
        return await _create_or_update(client, body, push)
    except ImmichError as err:
        if unknown_method(err):
            return Outcome(False, (await no_webhook_step(client),))
        raise


async def _create_or_update(
    client: ImmichClient, body: dict[str, Any], push: PushSettings
) -> Outcome:
    target = f"POST {body['steps'][0]['config']['url']} with header {push.header}"
    mine = [w for w in await client.workflows() if w.name == WORKFLOW_NAME]
    if not mine:
        created = await client.create_workflow(body)
        return Outcome(True, (f"created workflow '{WORKFLOW_NAME}' ({created.id}): {TRIGGER} -> "
                              f"{target}",))  # fmt: skip
    if _same(mine[0], body):
        return Outcome(True, (f"workflow '{WORKFLOW_NAME}' ({mine[0].id}) is already set up: "
                              f"{TRIGGER} -> {target}; nothing changed",))  # fmt: skip
    await client.update_workflow(mine[0].id, body)
    return Outcome(True, (f"updated workflow '{WORKFLOW_NAME}' ({mine[0].id}): {TRIGGER} -> "
                          f"{target}",))  # fmt: skip


async def has_workflow(client: ImmichClient) -> bool:
    """Whether the key's user has the sidecar's workflow, enabled (Immich 3.x only)."""
    if (await client.version()).major < 3:
        return False
    mine = [w for w in await client.workflows() if w.name == WORKFLOW_NAME]
    return any(w.enabled and w.trigger == TRIGGER for w in mine)


def last_push(settings: Settings, account: str | None = None) -> datetime | None:
    """When the last push arrived: for any account, or for the uploads of ``account``."""
    store = Store.open_for_reading(settings.state.path)
    try:
        return (AccountStore(store, account) if account else store).get_time(LAST_PUSH_KEY)
    finally:
        store.close()


def arrival(settings: Settings, now: datetime, account: str | None = None) -> str:
    """When the last push arrived (for any account, or for ``account``'s uploads)."""
    arrived = last_push(settings, account)
    if arrived is None:
        return "no push has arrived yet"
    ago = max(0, int((now - arrived).total_seconds()))
    return f"last push arrived {arrived:%Y-%m-%d %H:%M:%S} UTC ({ago} s ago)"


async def status(settings: Settings, client: ImmichClient, now: datetime) -> Outcome:
    """Whether the workflow exists and when the last push arrived."""
    if settings.push is None:
        return Outcome(False, (NOT_CONFIGURED,))
    check = await workflow_check(settings, client)
    return Outcome(check.ok, (check.render().removeprefix("✓ ").removeprefix("✗ "),
                              arrival(settings, now)))  # fmt: skip


async def workflow_check(settings: Settings, client: ImmichClient) -> Check:
    """The doctor's push line: is the workflow there, enabled, on the right trigger?"""
    try:
        problem = await _usable(client, ("workflow.read",))
        if problem is not None:
            return failed(problem.line, problem.why)
        mine = [w for w in await client.workflows() if w.name == WORKFLOW_NAME]
    except ImmichError as err:
        return failed(f"push: could not read the Immich workflows ({err})", "check immich.url")
    if not mine:
        return failed(
            f"push: no workflow '{WORKFLOW_NAME}' for this key's user",
            "run `immich-sidecar push setup` (it sets the workflow up under every account)",
        )
    workflow = mine[0]
    if not workflow.enabled or workflow.trigger != TRIGGER:
        return failed(
            f"push: workflow '{WORKFLOW_NAME}' is disabled or not on {TRIGGER}",
            "run `immich-sidecar push setup` to repair it",
        )
    return passed(f"push: workflow '{WORKFLOW_NAME}' sends {TRIGGER} to {_url_of(workflow)}")


async def _with_client(settings: Settings, key: Secret, action: str, url: str | None) -> Outcome:
    async with ImmichClient(
        settings.immich.url, key, Metrics(), timeout=10.0, max_attempts=2, max_retry_seconds=10.0
    ) as client:
        try:
            if action == "setup":
                return await setup(settings, client, url)
            return await status(settings, client, utc_now())
        except ImmichError as err:  # its text starts with "Immich <endpoint>"
            return Outcome(False, (str(err),))


async def each_account(settings: Settings, action: str, url: str | None = None) -> Outcome:
    """Setup or status under every configured account, each with its own key (a workflow
    fires for its owner's uploads only): its lines named by the account when there are
    several (status: the workflow and that account's last push). Fine when it is fine in
    every account."""
    if settings.push is None:
        return Outcome(False, (NOT_CONFIGURED,))
    accounts = settings.immich.accounts
    several = len(accounts) > 1
    ok, lines = True, []
    for account in accounts:
        outcome = await _with_client(settings, account.api_key, action, url)
        ok = ok and outcome.ok
        said = list(outcome.lines)
        if action == "status" and several:  # each account's own last push
            said[1:] = [arrival(settings, utc_now(), account.name)]
        lines += [f"account {account.name}: {line}" if several else line for line in said]
    return Outcome(ok, tuple(lines))


def run(config_path: Path, action: str, url: str | None = None, out: TextIO | None = None) -> int:
    """``immich-sidecar push setup|status``: prints what it did or found; 0 when all is well."""
    settings = load_settings(config_path)
    quiet_library_retry_hooks()
    outcome = asyncio.run(each_account(settings, action, url))
    for line in outcome.lines:
        print(line, file=out or sys.stdout)
    return 0 if outcome.ok else 1
