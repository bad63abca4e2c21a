"""A short bot session for ``doctor``: log in, wait for the gateway, read what the bot can see,
leave. The bot check and the Message Content check use the same one."""

from __future__ import annotations

import asyncio

import discord

READY_TIMEOUT = 30.0  # seconds the gateway may take to say it is ready


class GatewayProbe(discord.Client):
    """Knows the bot's servers, channels and own permissions once ready; with
    ``message_content`` it also asks for that privileged intent (and its events' intent)."""

    def __init__(self, *, message_content: bool = False) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        if message_content:
            intents.guild_messages = True
            intents.message_content = True
        super().__init__(
            intents=intents,
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=1.0,
        )
        self.ready = asyncio.Event()

    async def on_ready(self) -> None:
        self.ready.set()

    async def connect_until_ready(
        self, limit: float = READY_TIMEOUT
    ) -> tuple[bool, BaseException | None]:
        """After ``login``: connect and wait for the gateway. Returns whether it became ready,
        and, when the connection ended before that, why (``None`` on a time-out)."""
        runner = asyncio.create_task(self.connect(reconnect=False))
        ready = asyncio.create_task(self.ready.wait())
        done, _ = await asyncio.wait(
            {runner, ready}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done:
            return True, None
        ready.cancel()
        return False, runner.exception() if runner in done else None
