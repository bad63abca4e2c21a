"""``doctor``'s target checks: one line per target in the config's order (each kind checks
itself; a bot channel through the bot's session), and ``--send-test``'s one labelled message."""

from __future__ import annotations

from typing import TextIO

import discord
import httpx

from sidecar.config.model import Settings
from sidecar.discord.bot import channel_problem
from sidecar.discord.probe import GatewayProbe
from sidecar.doctor.bot import channel_check
from sidecar.ops.checks import Check, failed, passed
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.targets.registry import kind_of

TEST_MESSAGE = (
    "Test message from immich-sidecar doctor: target {name!r} works. "
    "This is not a photo notification."
)


async def target_checks(
    settings: Settings, probe: GatewayProbe | None, *, bot_ready: bool
) -> list[Check]:
    checks: list[Check] = []
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
