"""``immich-sidecar doctor``: check a whole setup against the live Immich and Discord.

Each check gives one ``Check`` value (passed or not, one line, what to do); the runner runs the
areas in order (Immich, push, accounts, the state file, the Discord bot, the targets, ingest,
the test message), prints one line per check, and the exit code says whether everything the
config's features need is in place. Nothing here prints a secret: targets are named by their
config name, never by their webhook URL, and the key and token are only ever sent, never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TextIO

from sidecar.config.loader import load_settings
from sidecar.config.model import Settings
from sidecar.config.secrets import secret_values
from sidecar.discord.intents import ingest_checks
from sidecar.discord.probe import GatewayProbe
from sidecar.doctor.accounts import account_checks
from sidecar.doctor.bot import bot_checks
from sidecar.doctor.immich import immich_checks
from sidecar.doctor.push import push_checks
from sidecar.doctor.state import state_check
from sidecar.doctor.targets import send_test, target_checks
from sidecar.engine.accounts import Accounts
from sidecar.immich.client import ImmichClient
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.masking import mask_secrets
from sidecar.ops.checks import Check
from sidecar.ops.metrics import Metrics


class _Report:
    """Prints each check as it comes and keeps it for the verdict."""

    def __init__(self, out: TextIO, secrets: Collection[str] = ()) -> None:
        self.out = out
        self.checks: list[Check] = []
        self._secrets = secrets  # masked in every line, whatever a check quotes

    def emit(self, new: Sequence[Check]) -> None:
        for check in new:
            self.checks.append(check)
            print(mask_secrets(check.render(), self._secrets), file=self.out, flush=True)

    def verdict(self) -> int:
        bad = sum(not c.ok for c in self.checks)
        if bad:
            print(f"{bad} of {len(self.checks)} checks failed", file=self.out)
            return 1
        print(f"all {len(self.checks)} checks passed", file=self.out)
        return 0


async def diagnose(
    settings: Settings,
    out: TextIO,
    *,
    send_test_to: str | None = None,
    client: ImmichClient | None = None,
) -> int:
    """Run every check, print one line each, return the exit code (0: all passed)."""
    report = _Report(out, secret_values(settings))
    await _immich_side(settings, report, client)
    report.emit([state_check(settings.state.path)])
    await _discord_side(settings, report, send_test_to)
    return report.verdict()


async def _immich_side(settings: Settings, report: _Report, client: ImmichClient | None) -> None:
    """Immich, push and the accounts, through ``client`` or one of doctor's own."""
    immich = client or ImmichClient(
        settings.immich.url,
        settings.immich.api_key,
        Metrics(),
        timeout=10.0,
        max_attempts=2,
        max_retry_seconds=10.0,
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            accounts = None
            if len(settings.immich.accounts) > 1:  # people are looked up in every account
                accounts = await Accounts.open(settings, Metrics(), stack)
            bot = settings.discord.token is not None
            report.emit(await immich_checks(settings, immich, bot=bot, accounts=accounts))
            report.emit(await push_checks(settings, immich))
            report.emit(await account_checks(settings, accounts))
    finally:
        if client is None:
            await immich.aclose()


async def _discord_side(settings: Settings, report: _Report, send_test_to: str | None) -> None:
    """The bot (one short gateway session for all its checks), the targets, ingest, and the
    test message."""
    probe = GatewayProbe() if settings.discord.token is not None else None
    try:
        checks, bot_ready = await bot_checks(settings, probe)
        report.emit(checks)
        report.emit(await target_checks(settings, probe, bot_ready=bot_ready))
        report.emit(await ingest_checks(settings))
        if send_test_to is not None:
            report.emit([await send_test(settings, send_test_to, probe, report.out)])
    finally:
        if probe is not None:
            with contextlib.suppress(Exception):
                await probe.close()


def run(config_path: Path, *, send_test_to: str | None = None, out: TextIO | None = None) -> int:
    """``immich-sidecar doctor``."""
    settings = load_settings(config_path)
    quiet_library_retry_hooks()  # the Immich client logs its own retries
    # discord.py logs its login at INFO ("logging in using static token"): among doctor's
    # one-line-per-check output it reads as a check. Its warnings still show; DEBUG shows all.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("discord").setLevel(logging.WARNING)
    stream = out or sys.stdout
    print(f"checking {config_path}", file=stream)
    return asyncio.run(diagnose(settings, stream, send_test_to=send_test_to))
