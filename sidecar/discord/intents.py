"""The gateway intents the bot asks for, and what happens when Discord refuses one.

Ingest needs to read what members post: the GUILD_MESSAGES intent for the events and the
privileged Message Content intent for their attachments (without it Discord sends the messages
with empty content and no attachments). The bot asks for both only when ``discord.ingest`` is
configured. When the application does not have the intent switched on, Discord closes the
gateway with 4014 ("Disallowed intent(s)"): the bot says so in one sentence and connects again
without it, so that everything else keeps working.
"""

from __future__ import annotations

import contextlib

import discord

from sidecar.config.ingest_checks import PORTAL_SWITCH
from sidecar.config.model import Settings
from sidecar.discord.probe import GatewayProbe
from sidecar.ops.checks import Check, failed, passed

MESSAGE_CONTENT_OFF = (
    "discord.ingest is off: Discord refused the Message Content intent (Disallowed intent(s)); "
    f"switch on {PORTAL_SWITCH} and restart the sidecar (the rest of the bot works without it)"
)
INGEST_CHANNEL_NEEDS = (
    ("view_channel", "View Channel"),
    ("read_message_history", "Read Message History"),
    ("send_messages", "Send Messages"),
    ("add_reactions", "Add Reactions"),
)


def bot_intents(settings: Settings) -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True  # channels, roles and our own permissions; nothing privileged
    if settings.discord.ingest:
        intents.guild_messages = True
        intents.message_content = True
    return intents


def asks_message_content(client: discord.Client) -> bool:
    return client.intents.message_content


def drop_message_content(client: discord.Client) -> None:
    """Connect without the Message Content intent from now on. discord.py reads the intents
    for each IDENTIFY from its connection state and offers no public way to change them after
    the client is made; rebuilding the client would drop the sinks built on it."""
    intents = client.intents
    intents.message_content = False
    intents.guild_messages = False  # the events would be empty: no use receiving them
    client._connection._intents = intents


def refused_intent(error: BaseException | None) -> bool:
    """Whether a gateway failure is Discord's 4014 (with or without discord.py's wrapper)."""
    if isinstance(error, discord.PrivilegedIntentsRequired):
        return True
    return isinstance(error, discord.ConnectionClosed) and error.code == 4014


# ---------------------------------------------------------------------------- doctor


async def ingest_checks(settings: Settings) -> list[Check]:
    """``doctor``: with ``discord.ingest``, may the bot read message content, and may it read,
    react and reply in each ingest channel? Login problems are the bot check's to report."""
    token = settings.discord.token
    if not settings.discord.ingest or token is None:
        return []
    probe = GatewayProbe(message_content=True)
    try:
        try:
            await probe.login(token.reveal())
        except (discord.HTTPException, discord.LoginFailure, OSError, TimeoutError):
            return []
        ready, error = await probe.connect_until_ready()
        if ready:
            return [
                passed("the bot may read message content (Message Content intent, for ingest)"),
                *[_channel_check(probe, c.channel_id) for c in settings.discord.ingest],
            ]
        if refused_intent(error):
            return [
                failed(
                    "Discord refused the Message Content intent: discord.ingest cannot see "
                    "attachments",
                    f"switch on {PORTAL_SWITCH}",
                )
            ]
        return [failed("could not check the Message Content intent", "run doctor again")]
    finally:
        with contextlib.suppress(Exception):
            await probe.close()


def _channel_check(probe: discord.Client, channel_id: int) -> Check:
    channel = probe.get_channel(channel_id)
    if not isinstance(channel, discord.abc.GuildChannel):
        return failed(
            f"ingest channel {channel_id}: the bot cannot see it",
            "check discord.ingest[].channel_id, invite the bot and give it View Channel there",
        )
    me = channel.guild.me
    permissions = channel.permissions_for(me)
    missing = [label for flag, label in INGEST_CHANNEL_NEEDS if not getattr(permissions, flag)]
    if missing:
        return failed(
            f"ingest channel #{channel.name}: the bot lacks {', '.join(missing)}",
            "allow them for the bot in the channel's settings > Permissions",
        )
    return passed(f"ingest channel #{channel.name}: the bot can read, react and reply")
