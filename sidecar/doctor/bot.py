"""``doctor``'s Discord bot checks: the token logs in and the gateway answers (a short
``GatewayProbe`` session), the bot is in a server (else its invite URL), the claims channel,
and the line of a bot channel target."""

from __future__ import annotations

import aiohttp
import discord

from sidecar.config.model import Secret, Settings
from sidecar.discord.probe import GatewayProbe
from sidecar.doctor.members import claims_channel_check
from sidecar.ops.checks import Check, failed, passed
from sidecar.targets.discord.channel import NEEDED_PERMISSIONS, ChannelTarget

# View Channel, Send Messages, Embed Links, Attach Files: what the invite link asks for.
INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15)


def invite_url(application_id: int) -> str:
    return (
        f"https://discord.com/oauth2/authorize?client_id={application_id}"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


def channel_check(target: ChannelTarget, problem: str | None, channel_name: str | None) -> Check:
    if problem is None:
        where = f"#{channel_name}" if channel_name else f"channel {target.channel_id}"
        return passed(
            f"target {target.name!r}: the bot can post pictures in {where} ({NEEDED_PERMISSIONS})"
        )
    text, _, fix = problem.partition("; ")
    return failed(text, fix or "see Discord setup in the docs (docs/discord-setup.md)")


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


async def bot_checks(settings: Settings, probe: GatewayProbe | None) -> tuple[list[Check], bool]:
    """The bot's lines, and whether it is connected (the bot channels are checked through its
    session). Nothing without a token."""
    token = settings.discord.token
    if probe is None or token is None:
        return [], False
    problem = await _connect(probe, token)
    if problem is not None:
        return [problem], False
    checks = [passed(f"the Discord bot logs in as {probe.user} (in {len(probe.guilds)} server(s))")]
    if not probe.guilds and probe.application_id is not None:
        checks.append(
            failed(
                "the bot is in no Discord server",
                f"invite it: {invite_url(probe.application_id)}",
            )
        )
    checks += await claims_channel_check(settings, probe)
    return checks, True
