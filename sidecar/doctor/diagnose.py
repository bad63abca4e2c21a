"""``immich-sidecar doctor``: check a whole setup against the live Immich and Discord.

Each check gives one ``Check`` value (passed or not, one line, what to do); the runner prints
one line per check and the exit code says whether everything the config's features need is in
place. Nothing here prints a secret: targets are named by their config name, never by their
webhook URL, and the key and token are only ever sent, never shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

import aiohttp
import discord
import httpx

from sidecar.config.loader import load_settings
from sidecar.config.model import Secret, Settings
from sidecar.discord.bot import channel_problem
from sidecar.discord.intents import ingest_checks
from sidecar.discord.probe import GatewayProbe
from sidecar.doctor.accounts import account_checks, person_across
from sidecar.doctor.members import claims_channel_check, member_name_checks
from sidecar.engine.accounts import Accounts
from sidecar.engine.planning import name_refs, resolve_name, rule_albums
from sidecar.engine.store.owner import RESET_FIX, StateOwner, owner_problem, read_owner
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichAuthError, ImmichError
from sidecar.immich.models import Album, AlbumSummary, ServerVersion
from sidecar.immich.permissions import (
    KEY_SETTINGS_HINT,
    PEOPLE,
    STATE_OWNER,
    Feature,
    features_in_use,
)
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.checks import Check, failed, passed
from sidecar.ops.metrics import Metrics
from sidecar.push.setup import push_checks
from sidecar.targets.discord.channel import NEEDED_PERMISSIONS, ChannelTarget
from sidecar.targets.registry import kind_of

log = logging.getLogger(__name__)

SUPPORTED_MAJORS = (2, 3)
# View Channel, Send Messages, Embed Links, Attach Files: what the invite link asks for.
INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15)
TEST_MESSAGE = (
    "Test message from immich-sidecar doctor: target {name!r} works. "
    "This is not a photo notification."
)


# ---------------------------------------------------------------------------- pure checks


def version_check(version: ServerVersion) -> Check:
    if version.major in SUPPORTED_MAJORS:
        return passed(f"Immich {version} is a supported version (2.x, 3.x)")
    if version.major < SUPPORTED_MAJORS[0]:
        return failed(
            f"Immich {version} is too old for this sidecar", "upgrade Immich to 2.x or later"
        )
    return failed(
        f"Immich {version} is newer than this sidecar knows (2.x, 3.x)",
        "upgrade immich-discord-sidecar",
    )


def feature_check(feature: Feature, granted: frozenset[str]) -> Check:
    missing = feature.missing(granted)
    if not missing:
        return passed(f"the API key allows {feature.label} ({', '.join(feature.permissions)})")
    return failed(
        f"the API key lacks {', '.join(missing)}, needed for {feature.label}",
        f"tick {', '.join(missing)} on the key ({KEY_SETTINGS_HINT}), "
        "or create a new key with them and set immich.api_key",
    )


def state_check(path: Path) -> Check:
    """The state file can be created, or read and written where it is. SQLite keeps its journal
    (``-wal``, ``-shm``) beside the file, so its folder must be writable too."""
    fix = "set state.path to a file in a folder this user may write"
    if path.exists():
        if path.is_dir():
            return failed(f"state.path {path} is a folder, not a file", fix)
        if not os.access(path, os.R_OK | os.W_OK):
            return failed(f"state.path {path}: the file is not writable", fix)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return failed(
                f"state.path {path}: cannot write beside it in {path.parent} (permission "
                "denied; SQLite keeps its journal there)",
                fix,
            )
        return passed(f"state.path {path} exists and is writable")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return failed(f"state.path {path}: cannot create it in {folder} (permission denied)", fix)
    return passed(f"state.path {path} is writable (made at the first start)")


def channel_check(target: ChannelTarget, problem: str | None, channel_name: str | None) -> Check:
    if problem is None:
        where = f"#{channel_name}" if channel_name else f"channel {target.channel_id}"
        return passed(
            f"target {target.name!r}: the bot can post pictures in {where} ({NEEDED_PERMISSIONS})"
        )
    text, _, fix = problem.partition("; ")
    return failed(text, fix or "see the Discord setup section of the README")


def invite_url(application_id: int) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


# ---------------------------------------------------------------------------- Immich


async def immich_checks(
    settings: Settings, client: ImmichClient, *, bot: bool, accounts: Accounts | None = None
) -> list[Check]:
    url = settings.immich.url
    try:
        version = await client.version()
    except ImmichError as err:
        return [
            failed(
                f"Immich does not answer at {url} ({err})",
                "check immich.url: is Immich running, and is this the address from "
                "where the sidecar runs? (laptop: http://localhost:2283; beside Immich's "
                "docker compose: http://immich-server:2283)",
            )
        ]
    checks = [passed(f"Immich answers at {url}"), version_check(version)]
    try:
        granted = await client.key_permissions()
    except ImmichAuthError:
        return [
            *checks,
            failed(
                f"Immich rejected the API key ({url} answered 401)",
                f"check immich.api_key; create a key in {KEY_SETTINGS_HINT}",
            ),
        ]
    except ImmichError as err:
        return [
            *checks,
            failed(f"could not read the API key's permissions ({err})", "check immich.api_key"),
        ]
    checks.append(passed("Immich accepts the API key"))
    checks += [feature_check(f, granted) for f in features_in_use(settings, bot=bot)]
    checks += await _name_checks(settings, client, granted, bot=bot, accounts=accounts)
    if not PEOPLE.missing(granted):
        checks += await member_name_checks(settings, client)
    if STATE_OWNER.missing(granted):
        return checks
    return checks + await _owner_checks(settings, client)


async def _owner_checks(settings: Settings, client: ImmichClient) -> list[Check]:
    """An existing state file must be the key's user's (``run`` refuses another's)."""
    path = settings.state.path
    recorded = read_owner(path) if path.is_file() else None
    if recorded is None:  # a new file, or one from before the record: adopted at the start
        return []
    try:
        user = await client.me()
    except ImmichError as err:
        return [failed(f"could not ask Immich who the API key is ({err})", "check immich.api_key")]
    problem = owner_problem(path, recorded, StateOwner(user.id, user.name, settings.immich.url))
    if problem is not None:
        return [failed(problem, RESET_FIX)]
    return [passed(f"state file {path} belongs to Immich user {user.name!r}, the key's user")]


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


async def _name_checks(
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


# ---------------------------------------------------------------------------- Discord


async def _connect(probe: GatewayProbe, token: Secret) -> Check | None:
    """Log in and wait until the gateway is ready; a failed Check when that cannot happen."""
    fix = (
        "reset the token (Discord Developer Portal > your application > Bot > Reset "
        "Token) and set discord.token"
    )
    try:
        await probe.login(token.reveal())
    except discord.LoginFailure:
        return failed("Discord rejected the bot token", fix)
    except discord.HTTPException as err:
        return failed(f"could not log in to Discord ({err.status})", "try again later")
    except (TimeoutError, aiohttp.ClientError, OSError) as err:
        return failed(
            f"could not reach Discord ({type(err).__name__})",
            "check the network, then run doctor again",
        )
    ready, error = await probe.connect_until_ready()
    if ready:
        return None
    reason = f" ({type(error).__name__})" if error is not None else ""
    return failed(
        f"the bot logged in but could not connect to the Discord gateway{reason}", "try again later"
    )


async def discord_checks(settings: Settings, probe: GatewayProbe | None) -> list[Check]:
    checks: list[Check] = []
    token = settings.discord.token
    bot_ready = False
    if probe is not None and token is not None:
        problem = await _connect(probe, token)
        if problem is not None:
            checks.append(problem)
        else:
            bot_ready = True
            checks.append(
                passed(
                    f"the Discord bot logs in as {probe.user} (in {len(probe.guilds)} server(s))"
                )
            )
            if not probe.guilds and probe.application_id is not None:
                checks.append(
                    failed(
                        "the bot is in no Discord server",
                        f"invite it: {invite_url(probe.application_id)}",
                    )
                )
            checks += await claims_channel_check(settings, probe)
    async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as http:
        for target in settings.targets.values():  # in the config's order, whatever the kind
            if not isinstance(target, ChannelTarget):
                check = await kind_of(target).check(target, http)
                checks += [check] if check is not None else []
            elif bot_ready and probe is not None:  # a bot channel needs the bot's session
                problem_text = await channel_problem(probe, target)
                channel = probe.get_channel(target.channel_id)
                checks.append(channel_check(target, problem_text, getattr(channel, "name", None)))
            elif probe is not None:
                # Every bot channel still gets its line: a target that is silently not listed
                # reads as one that needs no check.
                checks.append(
                    failed(
                        f"target {target.name!r} (channel {target.channel_id}): not checked, the "
                        "bot is not connected to Discord",
                        "fix the Discord connection above, then run doctor again",
                    )
                )
    return checks


# ---------------------------------------------------------------------------- test message


async def send_test(
    settings: Settings, name: str, probe: GatewayProbe | None, out: TextIO
) -> Check:
    target = settings.targets.get(name)
    if target is None:
        return failed(
            f"no target called {name!r}", f"pick one of: {', '.join(settings.targets) or '(none)'}"
        )
    text = TEST_MESSAGE.format(name=name)
    if not isinstance(target, ChannelTarget):  # a bot channel needs the bot's session below
        async with httpx.AsyncClient(timeout=15.0, follow_redirects=False) as http:
            check = await kind_of(target).send_test(target, text, http, out)
        if check is not None:
            return check
        return failed(f"target {name!r} cannot take a test message", "")
    channel = probe.get_channel(target.channel_id) if probe is not None else None
    if not isinstance(channel, discord.abc.Messageable):
        return failed(
            f"cannot post the test message to {name!r}: the bot cannot see the channel",
            "fix the target's check above first",
        )
    try:
        await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
    except discord.HTTPException as err:
        return failed(
            f"Discord refused the test message for {name!r} ({err.status})",
            "fix the target's check above first",
        )
    return passed(f"test message posted to target {name!r}")


# ---------------------------------------------------------------------------- runner


async def diagnose(
    settings: Settings,
    out: TextIO,
    *,
    send_test_to: str | None = None,
    client: ImmichClient | None = None,
) -> int:
    """Run every check, print one line each, return the exit code (0: all passed)."""
    checks: list[Check] = []

    def emit(new: Sequence[Check]) -> None:
        for check in new:
            checks.append(check)
            print(check.render(), file=out, flush=True)

    bot = settings.discord.token is not None
    own_client = client is None
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
            emit(await immich_checks(settings, immich, bot=bot, accounts=accounts))
            emit(await push_checks(settings, immich))
            emit(await account_checks(settings, accounts))
    finally:
        if own_client:
            await immich.aclose()
    emit([state_check(settings.state.path)])
    probe = GatewayProbe() if bot else None
    try:
        emit(await discord_checks(settings, probe))
        emit(await ingest_checks(settings))
        if send_test_to is not None:
            emit([await send_test(settings, send_test_to, probe, out)])
    finally:
        if probe is not None:
            with contextlib.suppress(Exception):
                await probe.close()
    bad = sum(not c.ok for c in checks)
    if bad:
        print(f"{bad} of {len(checks)} checks failed", file=out)
        return 1
    print(f"all {len(checks)} checks passed", file=out)
    return 0


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
