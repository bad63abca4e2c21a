"""The Discord bot: gateway connection, slash commands, startup checks, sinks for its channels.

Lifecycle, in the style of discord.py's ``advanced_startup`` example::

    async with SidecarBot(settings, immich, metrics, status) as bot:
        problems = await bot.launch(settings.discord.token)   # logs in, waits until ready
        ...
    # leaving the block (or bot.close()) disconnects
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Protocol

import aiohttp
import discord
from discord import app_commands

from sidecar.config.model import Secret, Settings
from sidecar.discord.buttons import MembersImmich, dynamic_items
from sidecar.discord.claims import member_commands
from sidecar.discord.commands import (
    ImmichForCommands,
    ImmichGroup,
    MemoriesProvider,
    StatusProvider,
    reply,
)
from sidecar.discord.intents import (
    MESSAGE_CONTENT_OFF,
    asks_message_content,
    bot_intents,
    drop_message_content,
)
from sidecar.discord.speech import CatalogTranslator, reply_text
from sidecar.discord.uploads.ingest import Ingest, IngestStore
from sidecar.discord.uploads.save_command import save_to_immich
from sidecar.engine.members import MemberDirectory
from sidecar.messages.texts import SORRY
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import MediaSource
from sidecar.targets.discord.channel import NEEDED_PERMISSIONS, BotSink, ChannelTarget

__all__ = ["DiscordStartupError", "SidecarBot"]

log = logging.getLogger(__name__)


def _not_about_voice(record: logging.LogRecord) -> bool:
    # The sidecar never joins voice channels; discord.py's warning about voice libraries
    # would only puzzle people at every start.
    return "voice will NOT be supported" not in record.getMessage()


logging.getLogger("discord.client").addFilter(_not_about_voice)

# Attempts so far of the discord.py REST call under way in this task (None outside one). A
# response cannot tell whether discord.py will send the request again (it gives up after five
# tries, on a long rate limit or on a Cloudflare 429), so the trace hook counts retries when
# they start: the second and later requests of one call.
_rest_attempts: ContextVar[list[int] | None] = ContextVar("discord_rest_attempts", default=None)


class DiscordStartupError(Exception):
    """The bot cannot start; the message is one line that says what to fix. ``passing`` is
    True for a fault that may go away by itself (Discord unreachable), False for a bad token."""

    def __init__(self, message: str, *, passing: bool = True) -> None:
        super().__init__(message)
        self.passing = passing


class ImmichForBot(ImmichForCommands, MediaSource, MembersImmich, Protocol):
    """What the bot needs from the Immich client: the commands' calls and thumbnails."""


def _retry_counter(metrics: Metrics) -> aiohttp.TraceConfig:
    trace = aiohttp.TraceConfig()

    async def on_request_start(
        session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        attempts = _rest_attempts.get()
        if attempts is None:  # the gateway or the CDN, not a REST call
            return
        attempts[0] += 1
        if attempts[0] > 1:
            metrics.discord_retries.inc()

    trace.on_request_start.append(on_request_start)
    return trace


def _count_attempts(http: discord.http.HTTPClient) -> None:
    """Mark each REST call, so that the trace hook knows a retry from a first attempt."""
    request = http.request

    async def counted(route: discord.http.Route, **kwargs: Any) -> Any:
        token = _rest_attempts.set([0])
        try:
            return await request(route, **kwargs)
        finally:
            _rest_attempts.reset(token)

    http.request = counted  # type: ignore[method-assign]


class SidecarBot(discord.Client):
    def __init__(
        self,
        settings: Settings,
        immich: ImmichForBot,
        metrics: Metrics,
        status_provider: StatusProvider,
        *,
        memories_provider: MemoriesProvider | None = None,
        directory: MemberDirectory | None = None,
        guild_ready_timeout: float = 2.0,
        max_ratelimit_timeout: float = 30.0,
        ingest_store: IngestStore | None = None,
        accounts: Mapping[str, ImmichForBot] | None = None,
    ) -> None:
        super().__init__(
            intents=bot_intents(settings),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=max_ratelimit_timeout,
            http_trace=_retry_counter(metrics),
        )
        _count_attempts(self.http)
        self.settings = settings
        self.immich = immich
        self.metrics = metrics
        metrics.track_discord_connection()
        self.status_provider = status_provider
        self.memories_provider = memories_provider
        self.directory = directory  # people links: /immich claim ..., buttons, DMs
        self.members_immich: MembersImmich = immich
        # Every Immich account, in config order (the first is the default one): the commands'
        # ``account`` option, and claims of any account's people.
        self.accounts: dict[str, ImmichForBot] = dict(accounts or {})
        self.members_accounts: Mapping[str, MembersImmich] = self.accounts or {"": immich}
        self.tree = app_commands.CommandTree(self)
        self.tree.on_error = self._on_command_error  # type: ignore[method-assign]
        self.startup_problems: list[str] = []
        self._synced_guilds: set[int] = set()
        self._runner: asyncio.Task[None] | None = None
        self._checked = asyncio.Event()  # set once on_ready has synced commands and checked
        self.ingest = (
            Ingest(self, lambda: self.settings, immich, ingest_store)
            if ingest_store is not None
            else None
        )
        self._catch_up: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def setup_hook(self) -> None:
        # Discord's own localizations of the commands' descriptions, from the catalogs.
        await self.tree.set_translator(CatalogTranslator())
        group = ImmichGroup(
            lambda: self.settings,
            self.immich,
            self.status_provider,
            self.memories_provider,
            self.accounts,
        )
        if self.directory is not None:
            for command in member_commands(self):
                group.add_command(command)
        self.tree.add_command(group)
        # Buttons of posts and claims sent before a restart answer too: their state is in
        # their custom ids, parsed back by these dynamic items.
        self.add_dynamic_items(*dynamic_items())
        self.tree.add_command(save_to_immich(lambda: self.settings, self.immich))

    async def launch(self, token: Secret, *, ready_timeout: float = 60.0) -> list[str]:
        """Log in, connect in the background, wait until ready, check the channel targets.

        Returns the problems found (also logged); raises DiscordStartupError with a one-line
        message when the bot cannot start at all.
        """
        try:
            await self.login(token.reveal())
        except discord.LoginFailure:
            raise DiscordStartupError(
                "Discord rejected the bot token: check discord.token (reset it in the Discord "
                "Developer Portal, Bot page, if it leaked or changed)",
                passing=False,
            ) from None
        except discord.HTTPException as error:
            raise DiscordStartupError(f"could not log in to Discord ({error.status})") from None
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            raise DiscordStartupError(
                f"could not reach Discord to log in ({type(error).__name__})"
            ) from None
        self._runner = asyncio.create_task(self._gateway(), name="discord-gateway")
        ready = asyncio.create_task(self._checked.wait())
        done, _ = await asyncio.wait(
            {self._runner, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            failure = self._runner.exception() if self._runner in done else None
            reason = f" ({type(failure).__name__})" if failure else ""
            raise DiscordStartupError(f"could not connect to the Discord gateway{reason}")
        return self.startup_problems

    async def _gateway(self) -> None:
        try:
            await self.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            if not asks_message_content(self):
                raise
            log.error("%s", MESSAGE_CONTENT_OFF)
            drop_message_content(self)
            await self.connect(reconnect=True)

    async def close(self) -> None:
        if self._catch_up is not None:
            self._catch_up.cancel()
        await super().close()
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner
        self.metrics.discord_connected.set(0)

    def update_settings(self, settings: Settings) -> None:
        """Hot reload: commands read the settings at each call."""
        self.settings = settings

    def sink_for(self, target: ChannelTarget) -> BotSink:
        return BotSink(self, target, self.immich, self.settings.immich.external_url)

    # ------------------------------------------------------------------ events

    async def on_ready(self) -> None:
        self.metrics.discord_connected.set(1)
        log.info("connected to Discord as %s in %d server(s)", self.user, len(self.guilds))
        try:
            problems = await self._sync_commands()
            problems += await self.check_targets()
            self.startup_problems = problems
        finally:
            self._checked.set()
        running = self._catch_up is not None and not self._catch_up.done()
        if self.ingest is not None and asks_message_content(self) and not running:
            # At every READY (a new session may have missed messages): read what came meanwhile.
            self._catch_up = asyncio.create_task(self.ingest.catch_up(), name="ingest-catch-up")

    async def on_message(self, message: discord.Message) -> None:
        if self.ingest is not None:
            await self.ingest.on_message(message)

    async def on_resumed(self) -> None:
        self.metrics.discord_connected.set(1)

    async def on_disconnect(self) -> None:
        self.metrics.discord_connected.set(0)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        await self._sync_commands()

    async def _sync_commands(self) -> list[str]:
        problems = []
        for guild in self.guilds:
            if guild.id in self._synced_guilds:
                continue
            self.tree.copy_global_to(guild=guild)
            try:
                await self.tree.sync(guild=guild)
            except discord.HTTPException as error:
                problem = (
                    f"could not register the /immich commands in server {guild.name!r} "
                    f"({error.status}): re-invite the bot with the applications.commands "
                    "scope"
                )
                log.warning("%s", problem)
                problems.append(problem)
            except (TimeoutError, aiohttp.ClientError, OSError) as error:
                # A passing network fault: the next READY (reconnect) tries the sync again.
                log.warning(
                    "could not register the /immich commands in server %r yet (%s)",
                    guild.name,
                    type(error).__name__,
                )
            else:
                self._synced_guilds.add(guild.id)
        return problems

    async def check_targets(self) -> list[str]:
        """Every bot channel target must exist and let the bot post pictures."""
        problems = []
        for target in self.settings.targets.values():
            if isinstance(target, ChannelTarget):
                problem = await self._check_target(target)
                if problem:
                    log.warning("%s", problem)
                    problems.append(problem)
        return problems

    async def _check_target(self, target: ChannelTarget) -> str | None:
        return await channel_problem(self, target)

    async def _on_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("slash command failed: %s", error, exc_info=error)
        with contextlib.suppress(Exception):
            await reply(interaction, reply_text(interaction, self.settings, SORRY), ephemeral=True)


async def channel_problem(client: discord.Client, target: ChannelTarget) -> str | None:
    """What stops ``client`` from posting pictures to a channel target, or None when it can.
    Used at start and by ``immich-sidecar doctor``."""
    prefix = f"target {target.name!r} (channel {target.channel_id})"
    channel: Any = client.get_channel(target.channel_id)
    if channel is None:
        try:
            channel = await client.fetch_channel(target.channel_id)
        except discord.NotFound:
            return (
                f"{prefix}: the channel does not exist or the bot is not in its server; "
                "check channel_id and invite the bot"
            )
        except discord.Forbidden:
            return f"{prefix}: the bot cannot see this channel; give it View Channel"
        except discord.HTTPException as error:
            return f"{prefix}: could not check the channel ({error.status})"
        except (TimeoutError, aiohttp.ClientError, OSError) as error:
            return f"{prefix}: could not check the channel yet ({type(error).__name__})"
    if not isinstance(channel, discord.abc.GuildChannel) or not isinstance(
        channel, discord.abc.Messageable
    ):
        return f"{prefix}: not a text channel of a server"
    me: discord.Member | None = channel.guild.me
    if me is None:
        return f"{prefix}: could not check the bot's permissions there"
    permissions = channel.permissions_for(me)
    missing = [
        label
        for flag, label in (
            ("view_channel", "View Channel"),
            ("send_messages", "Send Messages"),
            ("embed_links", "Embed Links"),
            ("attach_files", "Attach Files"),
        )
        if not getattr(permissions, flag)
    ]
    if missing:
        return (
            f"{prefix}: the bot lacks {', '.join(missing)} in #{channel.name}; "
            f"it needs {NEEDED_PERMISSIONS} (Discord: the channel's settings > "
            "Permissions, allow them for the bot or its role)"
        )
    return None
