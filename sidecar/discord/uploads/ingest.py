"""Drag-and-drop ingest (``discord.ingest``): the photos and videos members attach to a message
in an ingest channel go into Immich, exactly once.

A message is claimed in the state file before its first upload and marked done after its last,
with the assets it brought; a claim left open by a crash is handled again at the next start, and
Immich (which knows a file it already has by its checksum) answers "duplicate" for what had
arrived: the reply says "already in Immich" instead of a second asset appearing. Messages posted
while the sidecar was away are read from each channel's history, after the last one handled, at
every (re)connection. Messages are handled one at a time, in order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import aiohttp
import discord

from sidecar.clock import utc_now
from sidecar.config.ingest_checks import render_description
from sidecar.config.model import IngestChannel, Settings
from sidecar.discord.uploads.checks import Named, upload_refusal
from sidecar.discord.uploads.upload import AttachmentUploader, ImmichForUploads, UploadReport
from sidecar.immich.permissions import INGEST
from sidecar.targets.discord.safe import safe_text
from sidecar.wording import count

log = logging.getLogger(__name__)

ALL_IN = "\N{WHITE HEAVY CHECK MARK}"  # ✅
SOME_REFUSED = "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}"  # ⚠️
CATCH_UP_LIMIT = 1000  # messages read from one channel's history per (re)connection
NO_MENTIONS = discord.AllowedMentions.none()
_MEMBER_MESSAGES = (discord.MessageType.default, discord.MessageType.reply)


class IngestStore(Protocol):
    """The ingest tables of the state file (sidecar.engine.store.ingest.IngestTables)."""

    def ingest_claim(self, channel_id: int, message_id: int, now: datetime) -> bool: ...

    def ingest_remember_asset(self, asset_id: str, channel_id: int, message_id: int) -> None: ...

    def ingest_done(self, channel_id: int, message_id: int, asset_ids: Any) -> None: ...

    def ingest_seen(self, channel_id: int, message_id: int) -> None: ...

    def ingest_start_at(self, channel_id: int, message_id: int) -> None: ...

    def ingest_resume_after(self, channel_id: int) -> int | None: ...

    def ingested_with(self, asset_id: str, channel_id: int, message_id: int) -> bool: ...


def tally(report: UploadReport) -> str:
    """ "2 files uploaded, 1 file refused"."""
    counts: dict[str, int] = {}
    for file in report.files:
        counts[file.outcome] = counts.get(file.outcome, 0) + 1
    return ", ".join(
        count(counts[key], word, plural)
        for key, word, plural in (
            ("uploaded", "file uploaded", "files uploaded"),
            ("duplicate", "file already in Immich", "files already in Immich"),
            ("refused", "file refused", "files refused"),
            ("failed", "file failed", "files failed"),
        )
        if counts.get(key)
    )


def summary_line(report: UploadReport, album: str | None, external_url: str) -> str:
    """The reply's first line: how many went in, where, and a link."""
    where = "Immich"
    if album and report.album_id:
        where = f"the Immich album {safe_text(album)} <{external_url}/albums/{report.album_id}>"
    return f"Into {where}: {tally(report)}."


class Ingest:
    """Watches the ingest channels of the running settings for one bot."""

    def __init__(
        self,
        client: discord.Client,
        settings: Callable[[], Settings],
        immich: ImmichForUploads,
        store: IngestStore,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._client = client
        self._settings = settings
        self._immich = immich
        self._store = store
        self._clock = clock
        self._lock = asyncio.Lock()  # one message at a time: order, memory, the cursor

    def channel(self, channel_id: int) -> IngestChannel | None:
        return next(
            (c for c in self._settings().discord.ingest if c.channel_id == channel_id), None
        )

    async def on_message(self, message: discord.Message) -> None:
        config = self.channel(message.channel.id)
        if config is not None:
            await self.handle(message, config)

    async def catch_up(self) -> None:
        """Read every ingest channel's history after the last message handled."""
        for config in self._settings().discord.ingest:
            try:
                await self._catch_up(config)
            except discord.Forbidden:
                log.error(
                    "ingest channel %s: the bot may not read its history; give it View Channel "
                    "and Read Message History there",
                    config.channel_id,
                )
            except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
                log.warning(
                    "ingest channel %s: could not read the history (%s); trying again at the "
                    "next connection",
                    config.channel_id,
                    type(error).__name__,
                )

    async def _catch_up(self, config: IngestChannel) -> None:
        after = self._store.ingest_resume_after(config.channel_id)
        if after is None:  # first watched now: what was posted before is not ingested
            now = discord.utils.time_snowflake(self._clock())
            self._store.ingest_start_at(config.channel_id, now)
            return
        channel: Any = self._client.get_channel(config.channel_id)
        if channel is None:
            channel = await self._client.fetch_channel(config.channel_id)
        if not isinstance(channel, discord.abc.Messageable):
            log.error("ingest channel %s is not a text channel", config.channel_id)
            return
        seen = 0
        async for message in channel.history(
            after=discord.Object(after), limit=CATCH_UP_LIMIT, oldest_first=True
        ):
            seen += 1
            await self.handle(message, config)
        if seen:
            log.info(
                "ingest channel %s: read %s posted since the last run",
                config.channel_id,
                count(seen, "message"),
            )
        if seen >= CATCH_UP_LIMIT:
            log.warning(
                "ingest channel %s: more than %d messages waiting; the rest follow at the next "
                "connection",
                config.channel_id,
                CATCH_UP_LIMIT,
            )

    async def handle(self, message: discord.Message, config: IngestChannel) -> None:
        async with self._lock:
            try:
                await self._handle(message, config)
            except Exception:
                # The claim stays open: the next start handles the message again.
                log.exception("ingest of message %s failed", message.id)

    async def _handle(self, message: discord.Message, config: IngestChannel) -> None:
        channel_id, message_id = config.channel_id, message.id
        from_member = (
            not message.author.bot
            and message.webhook_id is None
            and message.type in _MEMBER_MESSAGES
        )
        if not from_member or not message.attachments:
            self._store.ingest_seen(channel_id, message_id)
            return
        if not self._store.ingest_claim(channel_id, message_id, self._clock()):
            log.debug("ingest: message %s was handled before", message_id)
            return
        author = await self._member(message)
        refusal = (
            upload_refusal(
                config.allowed_roles, (), [Named(r.id, r.name) for r in author.roles], None
            )
            if author is not None
            else "the author is no longer a member of this server"
        )
        if refusal is not None:
            self._store.ingest_done(channel_id, message_id, ())
            log.info("ingest: message %s refused: %s", message_id, refusal)
            await self._answer(message, SOME_REFUSED, f"Not uploaded to Immich: {refusal}.")
            return
        assert author is not None
        settings = self._settings()
        uploader = AttachmentUploader(
            self._immich,
            lambda: settings.immich.external_url,
            INGEST,
            on_asset=lambda asset: self._store.ingest_remember_asset(asset, channel_id, message_id),
            ours=lambda asset: self._store.ingested_with(asset, channel_id, message_id),
        )
        name = getattr(message.channel, "name", None) or str(channel_id)
        report = await uploader.upload(
            message.attachments,
            max_mb=settings.discord.upload.max_mb,
            description=render_description(config.description, author.display_name, name),
            album=config.album,
        )
        self._store.ingest_done(channel_id, message_id, report.asset_ids)
        external = settings.immich.external_url.rstrip("/")
        log.info("ingest: message %s in channel %s: %s", message_id, channel_id, tally(report))
        text = "\n".join([summary_line(report, config.album, external), *report.lines()])
        await self._answer(message, ALL_IN if report.all_in else SOME_REFUSED, text)

    async def _member(self, message: discord.Message) -> discord.Member | None:
        """The author as a member of the server (with roles and server nickname)."""
        if isinstance(message.author, discord.Member):
            return message.author
        if message.guild is None:
            return None
        try:  # a message read from the history carries the user, not the member
            return await message.guild.fetch_member(message.author.id)
        except discord.NotFound:
            return None

    async def _answer(self, message: discord.Message, emoji: str, text: str) -> None:
        """React and reply once; the uploads are recorded already, so a failure here is only
        logged (a reply lost, never a file uploaded twice)."""
        try:
            await message.add_reaction(emoji)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning(
                "ingest: could not react to message %s (%s)",
                message.id,
                getattr(error, "status", type(error).__name__),
            )
        try:
            await message.reply(text[:2000], mention_author=False, allowed_mentions=NO_MENTIONS)
        except (discord.HTTPException, aiohttp.ClientError, OSError, TimeoutError) as error:
            log.warning(
                "ingest: could not reply to message %s (%s)",
                message.id,
                getattr(error, "status", type(error).__name__),
            )
