"""A fake Discord (REST under /api/v10 + gateway websocket) on 127.0.0.1, for the real
discord.py client.

It serves one guild with a few channels and roles, records every request (JSON bodies,
multipart ``payload_json`` and ``files[n]`` bytes), can be told to fail requests
(429 with ``Via`` so discord.py retries, 403, 404, 5xx), or fail a random share of them
(``set_faults``), de-duplicates messages on ``enforce_nonce`` like Discord, refuses what Discord
refuses in a message (components v2 rules, webhooks' ``with_components``, files over the upload
limit with 413: ``tests.fakes.discord_components``), and can push INTERACTION_CREATE events to
drive slash commands. Use ``patched()`` to point discord.py at it
(restored afterwards).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

import discord.gateway
import discord.http
import discord.utils
import yarl
from aiohttp import BodyPartReader, WSMsgType, web

from tests.fakes import discord_components as rules
from tests.fakes.discord_commands import (
    checked_options,
    choices_problem,
    focused_option,
    registered,
)

TOKEN = "fake-bot-token"
APP_ID = 900000000000000001
BOT_ID = 900000000000000002
GUILD_ID = 900000000000000010
EVERYONE_ROLE = GUILD_ID
UPLOADER_ROLE = 900000000000000021
MEMBER_ROLE = 900000000000000022
PHOTOS_CHANNEL = 900000000000000031  # the bot may post and attach here
READ_ONLY_CHANNEL = 900000000000000032  # the bot may see but not send here
UPLOADS_CHANNEL = 900000000000000033
USER_ID = 900000000000000041

ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_HISTORY = 1 << 16
USE_COMMANDS = 1 << 31
EVERYONE_PERMS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_HISTORY
    | USE_COMMANDS
    | ADD_REACTIONS
)
# Gateway intents (IDENTIFY ``intents``) that decide which message events a session gets.
GUILD_MESSAGES_INTENT = 1 << 9
MESSAGE_CONTENT_INTENT = 1 << 15  # privileged: the application must have it switched on
DISALLOWED_INTENTS = 4014  # gateway close code when a privileged intent is not allowed

JSON = "application/json"  # discord.py parses a body only with exactly this content type
FAULT_KINDS = ("500", "503", "429", "timeout", "drop")


@dataclass
class RecordedRequest:
    method: str
    path: str  # below /api/v10, e.g. /channels/1/messages
    query: dict[str, str]
    json: Any
    files: dict[str, tuple[str, bytes]]  # field name -> (file name, bytes)
    authorization: str | None


@dataclass
class Failure:
    method: str
    path: re.Pattern[str]
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    times: int


@dataclass(frozen=True)
class Faults:
    """Fail a share (``rate``) of the REST requests whose path (below /api/v10) matches ``paths``.

    Each fault's kind is drawn from ``kinds`` by a generator seeded with ``seed``. ``drop``
    closes the connection before the request is handled; ``timeout`` handles it (a message is
    posted) and then holds the answer for ``timeout_delay`` seconds and drops the connection,
    so the client never learns that it succeeded; ``429`` answers like Discord's edge
    (``retry_after``, ``Retry-After`` and ``Via``); ``503`` like a proxy (HTML).
    """

    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    paths: str = r"/.*"
    timeout_delay: float = 2.0
    retry_after: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.rate}")
        if not self.kinds or set(self.kinds) - set(FAULT_KINDS):
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, not {self.kinds}")


@dataclass
class RecordedMessage:
    channel_id: int
    payload: dict[str, Any]
    files: dict[str, tuple[str, bytes]]
    id: int
    shown: tuple[str, ...] = ()  # the attachments a reader sees (v2: only those referenced)

    @property
    def file_names(self) -> list[str]:
        return [name for name, _ in self.files.values()]

    def file_types(self) -> dict[str, str]:
        """Each attachment's content type as Discord gives it (from the file name)."""
        return {name: rules.content_type(name) for name in self.file_names}

    @property
    def size(self) -> int:
        """The bytes of all its files."""
        return sum(len(data) for _, data in self.files.values())


@dataclass
class FakeDiscord:
    token: str = TOKEN
    requests: list[RecordedRequest] = field(default_factory=list)
    messages: list[RecordedMessage] = field(default_factory=list)
    interaction_responses: list[dict[str, Any]] = field(default_factory=list)
    interaction_messages: list[RecordedMessage] = field(default_factory=list)
    synced_commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    identifies: int = 0
    resumes: int = 0
    gateway_open: bool = True  # False: refuse gateway connections (Discord unreachable)
    # The Developer Portal's "Message Content Intent" switch (Bot > Privileged Gateway Intents)
    message_content_allowed: bool = True

    def __post_init__(self) -> None:
        self._ids = _snowflakes()
        self._failures: list[Failure] = []
        self._attachments: dict[int, tuple[str, bytes, str]] = {}
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = 0
        self._runner: web.AppRunner | None = None
        self._nonces: dict[tuple[int, str], dict[str, Any]] = {}
        self._faults: Faults | None = None
        self._fault_random = random.Random(0)
        self.injected: Counter[str] = Counter()  # random faults injected, by kind
        self.answers_held = 0  # requests handled whose answer a "timeout" fault holds back now
        self.base_url = ""
        self.webhooks: dict[int, dict[str, Any]] = {}  # channel webhooks made by add_webhook
        self.webhooks_without_components: set[int] = set()  # add_webhook(components=False)
        self.upload_limit = rules.UPLOAD_LIMIT  # bytes of files a message may carry
        self.refusals: list[tuple[int, dict[str, Any]]] = []  # every message refused, in order
        self.deleted_webhooks: set[int] = set()
        # -- issue 19: members, DM channels, message components
        self.user_names: dict[int, str] = {USER_ID: "carol"}
        self.dms_closed: set[int] = set()  # users who block DMs from the server (50007)
        self.dm_channels: dict[int, int] = {}  # DM channel id -> recipient user id
        self.message_json: dict[int, dict[str, Any]] = {}  # posted messages as Discord has them
        self._clicked: dict[str, int] = {}  # component interaction token -> message id
        self._autocompletes: dict[str, int] = {}  # autocomplete token -> the option's type
        self.refused_autocompletes: list[dict[str, Any]] = []  # answers Discord refused (400)
        self._init_message_events()
        self.channels: dict[int, dict[str, Any]] = {
            PHOTOS_CHANNEL: self._channel(PHOTOS_CHANNEL, "photos"),
            READ_ONLY_CHANNEL: self._channel(
                READ_ONLY_CHANNEL, "announcements", deny=SEND_MESSAGES | ATTACH_FILES
            ),
            UPLOADS_CHANNEL: self._channel(UPLOADS_CHANNEL, "uploads"),
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{id}/{name}", self._attachment)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @contextlib.contextmanager
    def patched(self) -> Iterator[None]:
        """Point discord.py's REST base and default gateway at this fake."""
        old_base = discord.http.Route.BASE
        old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        discord.http.Route.BASE = f"{self.base_url}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
            self.base_url.replace("http://", "ws://") + "/gateway"
        )
        try:
            yield
        finally:
            discord.http.Route.BASE = old_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    # ---------------------------------------------------------------- test controls

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests matching ``method`` and ``path`` (a regex on the
        path below /api/v10) with ``status``."""
        self._failures.append(
            Failure(method, re.compile(path), status, body or {}, headers or {}, times)
        )

    def set_faults(self, faults: Faults | None) -> None:
        """Fail a random share of the requests from now on (None: stop)."""
        self._faults = faults
        self._fault_random = random.Random(faults.seed if faults else 0)

    def rate_limit(self, method: str, path: str, retry_after: float = 0.05, times: int = 1) -> None:
        self.fail(
            method,
            path,
            429,
            times=times,
            body={
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
            },
            headers={"Via": "1.1 google", "Retry-After": str(retry_after)},
        )

    def add_channel(self, name: str, *, deny: int = 0) -> int:
        """A text channel where @everyone (and so the bot) is denied ``deny`` permissions.
        Add channels before the bot connects: the guild's channels arrive with GUILD_CREATE."""
        channel_id = next(self._ids)
        self.channels[channel_id] = self._channel(channel_id, name, deny=deny)
        return channel_id

    def add_webhook(self, channel_id: int, name: str = "Photos", *, components: bool = True) -> str:
        """A channel webhook, as "Copy Webhook URL" gives it (below this fake's /api/v10).
        ``components=False``: one that refuses components (400) even with ``with_components``."""
        webhook_id = next(self._ids)
        if not components:
            self.webhooks_without_components.add(webhook_id)
        token = f"webhook-token-{webhook_id}"
        self.webhooks[webhook_id] = {
            "id": str(webhook_id),
            "type": 1,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "name": name,
            "avatar": None,
            "application_id": None,
            "token": token,
        }
        return f"{self.base_url}/api/v10/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, url: str) -> None:
        """As deleting it in the channel's settings: its URL answers 404 Unknown Webhook."""
        webhook_id = int(url.rstrip("/").split("/")[-2])
        del self.webhooks[webhook_id]
        self.deleted_webhooks.add(webhook_id)

    def add_attachment(
        self,
        filename: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        size: int | None = None,
    ) -> dict[str, Any]:
        """An attachment as Discord puts it into an interaction, readable from the fake."""
        attachment_id = next(self._ids)
        self._attachments[attachment_id] = (filename, data, content_type)
        url = f"{self.base_url}/attachments/{attachment_id}/{quote(filename, safe='')}"
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data) if size is None else size,
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    def member(
        self,
        roles: tuple[int, ...] = (),
        permissions: int = EVERYONE_PERMS,
        user_id: int = USER_ID,
    ) -> dict[str, Any]:
        return {
            "user": self._user(user_id, self.user_names.get(user_id, "carol")),
            "roles": [str(r) for r in roles],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str(permissions),
            "nick": None,
            "avatar": None,
        }

    async def interact(
        self,
        options: list[dict[str, Any]],
        *,
        command: str = "immich",
        channel_id: int = UPLOADS_CHANNEL,
        roles: tuple[int, ...] = (),
        permissions: int = EVERYONE_PERMS,
        autocomplete: bool = False,
        attachments: list[dict[str, Any]] | None = None,
        user_id: int = USER_ID,
        locale: str = "en-US",
    ) -> str:
        """Push an INTERACTION_CREATE for ``/command <options>``; returns its token.

        As Discord's client builds it from the registered command (``discord_commands``): the
        options must be the command's, each gets its registered ``type`` (``type`` may be left
        out), an autocomplete has one ``focused`` option; raises ``InvalidInteraction`` for
        one real Discord could not send. ``locale`` is the member's Discord client language,
        which Discord sends with every interaction (``guild_locale`` stays the server's)."""
        token = f"interaction-token-{next(self._ids)}"
        definition = registered(self.synced_commands, command)
        sent = checked_options(
            definition,
            options,
            autocomplete=autocomplete,
            attachments=[str(a["id"]) for a in attachments or []],
        )
        if autocomplete:
            self._autocompletes[token] = int(focused_option(definition, sent)["type"])
        data: dict[str, Any] = {
            "id": str(definition["id"]),
            "name": command,
            "type": 1,
            "options": sent,
            "guild_id": str(GUILD_ID),
        }
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments}}
        member = self.member(roles, permissions, user_id)
        return await self._interact(
            4 if autocomplete else 2, data, channel_id, member, token, locale=locale
        )

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        channel_id: int,
        member: dict[str, Any],
        token: str,
        locale: str = "en-US",
        **extra: Any,
    ) -> str:
        """Push an INTERACTION_CREATE of ``kind`` (2 command, 3 component, 4 autocomplete) as
        Discord sends it in a guild channel; returns its token."""
        payload: dict[str, Any] = {
            "id": str(next(self._ids)),
            "application_id": str(APP_ID),
            "type": kind,
            "data": data,
            "guild_id": str(GUILD_ID),
            "channel_id": str(channel_id),
            "channel": self.channels[channel_id],
            "member": member,
            **extra,
            "token": token,
            "version": 1,
            "app_permissions": str(EVERYONE_PERMS),
            "locale": locale,
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(GUILD_ID)},
            "context": 0,
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        await self.dispatch("INTERACTION_CREATE", payload)
        return token

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        """Wait (bounded) until ``predicate()`` is true."""
        for _ in range(int(timeout / 0.01)):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("the fake Discord did not see the expected request in time")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        for ws in list(self._sockets):
            await self._send_event(ws, event, data)

    async def drop_gateway(self, *, refuse_reconnect: bool = False) -> None:
        self.gateway_open = not refuse_reconnect
        for ws in list(self._sockets):
            await ws.close(code=4000)

    def messages_in(self, channel_id: int) -> list[RecordedMessage]:
        return [m for m in self.messages if m.channel_id == channel_id]

    def responses_for(self, token: str) -> list[dict[str, Any]]:
        """Every payload the bot sent for one interaction: callback, edits and followups."""
        return [r for r in self.interaction_responses if r["token"] == token]

    # ---------------------------------------------------------------- payloads

    def _user(self, user_id: int, name: str, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "discriminator": "0",
            "global_name": name,
            "avatar": None,
            "bot": bot,
            "flags": 0,
        }

    def _channel(self, channel_id: int, name: str, deny: int = 0) -> dict[str, Any]:
        overwrites = (
            [{"id": str(EVERYONE_ROLE), "type": 0, "allow": "0", "deny": str(deny)}] if deny else []
        )
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(GUILD_ID),
            "name": name,
            "position": 0,
            "permission_overwrites": overwrites,
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "flags": 0,
        }

    def _role(self, role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "hoist": False,
            "position": position,
            "permissions": str(permissions),
            "managed": False,
            "mentionable": False,
            "flags": 0,
            "icon": None,
            "unicode_emoji": None,
        }

    def _guild(self) -> dict[str, Any]:
        bot_member = {
            "user": self._user(BOT_ID, "sidecar", bot=True),
            "roles": [],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
        }
        return {
            "id": str(GUILD_ID),
            "name": "Home",
            "icon": None,
            "owner_id": str(USER_ID),
            "roles": [
                self._role(EVERYONE_ROLE, "@everyone", EVERYONE_PERMS, 0),
                self._role(UPLOADER_ROLE, "uploaders", 0, 1),
                self._role(MEMBER_ROLE, "family", 0, 2),
            ],
            "channels": list(self.channels.values()),
            "members": [bot_member],
            "member_count": 2,
            "features": [],
            "emojis": [],
            "stickers": [],
            "threads": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "voice_states": [],
            "presences": [],
            "large": False,
            "unavailable": False,
            "joined_at": _now(),
            "premium_tier": 0,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_flags": 0,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
        }

    def _message(
        self,
        channel_id: int,
        payload: dict[str, Any],
        files: dict[str, tuple[str, bytes]],
        flags: int = 0,
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        attachments = []
        for index, (name, data) in enumerate(files.values()):
            url = f"{self.base_url}/attachments/{message_id}{index}/{name}"
            attachments.append(
                {
                    "id": str(message_id + index),
                    "filename": name,
                    "size": len(data),
                    "url": url,
                    "proxy_url": url,
                    "content_type": rules.content_type(name),
                }
            )
        return {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "author": self._user(BOT_ID, "sidecar", bot=True),
            "content": payload.get("content") or "",
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": attachments,
            "embeds": payload.get("embeds") or [],
            "pinned": False,
            "type": 0,
            "flags": flags | int(payload.get("flags") or 0),
            "nonce": payload.get("nonce"),
            "components": _components(payload.get("components") or []),
        }

    # ---------------------------------------------------------------- HTTP handlers

    async def _attachment(self, request: web.Request) -> web.Response:
        entry = self._attachments.get(int(request.match_info["id"]))
        if entry is None:
            return web.Response(status=404)
        _, data, content_type = entry
        return web.Response(body=data, content_type=content_type)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files = await _read_body(request)
        self.requests.append(
            RecordedRequest(
                request.method,
                path,
                dict(request.query),
                body,
                files,
                request.headers.get("Authorization"),
            )
        )
        for failure in self._failures:
            if (
                failure.times > 0
                and failure.method == request.method
                and failure.path.fullmatch(path)
            ):
                failure.times -= 1
                return _json(failure.body, failure.status, failure.headers)
        fault = self._draw_fault(path)
        if fault is not None:
            self.injected[fault] += 1
            return await self._inject(fault, request, path, body, files)
        return await self._handle(request, path, body, files)

    async def _handle(
        self, request: web.Request, path: str, body: Any, files: dict[str, tuple[str, bytes]]
    ) -> web.StreamResponse:
        if (
            not path.startswith(("/webhooks/", "/interactions/"))
            and request.headers.get("Authorization") != f"Bot {self.token}"
        ):
            return _json({"message": "401: Unauthorized", "code": 0}, 401)
        return await self._route(request.method, path, body, files, request)

    def _draw_fault(self, path: str) -> str | None:
        faults = self._faults
        if faults is None or not re.fullmatch(faults.paths, path):
            return None
        if self._fault_random.random() >= faults.rate:
            return None
        return self._fault_random.choice(faults.kinds)

    async def _inject(
        self,
        kind: str,
        request: web.Request,
        path: str,
        body: Any,
        files: dict[str, tuple[str, bytes]],
    ) -> web.StreamResponse:
        assert self._faults is not None
        if kind in ("timeout", "drop"):
            if kind == "timeout":
                await self._handle(request, path, body, files)  # done, but the answer is lost
                self.answers_held += 1
                try:
                    await asyncio.sleep(self._faults.timeout_delay)
                finally:
                    self.answers_held -= 1
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on an aborted connection
        if kind == "503":
            return web.Response(
                status=503,
                content_type="text/html",
                text="<html><body><h1>503 Service Unavailable</h1></body></html>",
            )
        if kind == "429":
            retry_after = self._faults.retry_after
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": retry_after,
                    "global": False,
                },
                429,
                {"Via": "1.1 google", "Retry-After": f"{retry_after:g}"},
            )
        return _json({"message": "500: Internal Server Error", "code": 0}, 500)

    async def _route(
        self,
        method: str,
        path: str,
        body: Any,
        files: dict[str, tuple[str, bytes]],
        request: web.Request,
    ) -> web.StreamResponse:
        if (answer := self._members_route(method, path, body, files)) is not None:
            return answer
        if method == "GET" and path == "/users/@me":
            return _json(self._user(BOT_ID, "sidecar", bot=True))
        if method == "GET" and path == "/oauth2/applications/@me":
            return _json(
                {
                    "id": str(APP_ID),
                    "name": "sidecar",
                    "description": "",
                    "icon": None,
                    "bot_public": False,
                    "bot_require_code_grant": False,
                    "owner": self._user(USER_ID, "carol"),
                    "verify_key": "00",
                    "flags": 0,
                    "interactions_endpoint_url": None,
                }
            )
        if (answer := self._message_route(method, path, request)) is not None:
            return answer
        if m := re.fullmatch(r"/channels/(\d+)", path):
            channel = self.channels.get(int(m[1]))
            if channel is None:
                return _json({"message": "Unknown Channel", "code": 10003}, 404)
            return _json(channel)
        if method == "POST" and (m := re.fullmatch(r"/channels/(\d+)/messages", path)):
            return self._create_message(int(m[1]), body, files)
        if method in ("PUT", "GET") and (
            m := re.fullmatch(r"/applications/\d+(?:/guilds/(\d+))?/commands", path)
        ):
            scope = m[1] or "global"
            if method == "PUT":
                self.synced_commands[scope] = [
                    {
                        "description": "",  # Discord's answer for message and user commands
                        **c,
                        "id": str(next(self._ids)),
                        "application_id": str(APP_ID),
                        "version": "1",
                        "guild_id": m[1],
                        "default_member_permissions": None,
                        "nsfw": False,
                    }
                    for c in body
                ]
            return _json(self.synced_commands.get(scope, []))
        if method == "POST" and (m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)):
            return self._interaction_callback(m[1], m[2], body, files)
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)(/messages/@original)?", path):
            if refusal := self._webhook_refusal(int(m[1]), m[2], method, bool(m[3])):
                return refusal
            hook = self.webhooks.get(int(m[1]))
            if hook is not None and not m[3]:  # a channel webhook: GET describes it, POST posts
                if method == "GET":
                    return _json(hook)
                body, refused = rules.webhook_components(
                    body or {},
                    request.query.get("with_components") in ("true", "True", "1"),
                    int(m[1]) not in self.webhooks_without_components,
                )
                if refused is not None:
                    return self._refuse(refused)
                return self._create_message(int(hook["channel_id"]), body, files)
            token = m[2]
            self.interaction_responses.append(
                {"token": token, "kind": method, "payload": body, "files": files}
            )
            message = self._message(UPLOADS_CHANNEL, body or {}, files)
            self.interaction_messages.append(
                self._recorded(UPLOADS_CHANNEL, body or {}, files, message)
            )
            return _json(message)
        return _json({"message": f"fake Discord has no route {method} {path}", "code": 0}, 404)

    def _webhook_refusal(
        self, webhook_id: int, token: str, method: str, original: bool
    ) -> web.Response | None:
        """Discord's answers for a deleted webhook, a wrong token, or a GET of an unknown one.
        Executing an id this fake never made stays allowed: interaction followups and the
        webhook tests post to ids of their own."""
        unknown = _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if webhook_id in self.deleted_webhooks:
            return unknown
        hook = self.webhooks.get(webhook_id)
        if hook is not None and hook["token"] != token:
            return _json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        if hook is None and method == "GET" and not original:
            return unknown
        return None

    def _create_message(
        self, channel_id: int, body: Any, files: dict[str, tuple[str, bytes]]
    ) -> web.Response:
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        payload = body or {}
        if refusal := self._message_refusal(payload, files):
            return self._refuse(refusal)
        nonce = payload.get("nonce")
        if payload.get("enforce_nonce") and nonce and (channel_id, nonce) in self._nonces:
            return _json(self._nonces[(channel_id, nonce)])  # Discord answers the earlier one
        message = self._message(channel_id, payload, files)
        if nonce:
            self._nonces[(channel_id, nonce)] = message
        self._history.setdefault(channel_id, []).append(message)
        self.messages.append(self._recorded(channel_id, payload, files, message))
        self.message_json[int(message["id"])] = message
        return _json(message)

    def _message_refusal(
        self, payload: dict[str, Any], files: dict[str, tuple[str, bytes]]
    ) -> rules.Refusal | None:
        names = [name for name, _ in files.values()]
        return rules.too_large(files, self.upload_limit) or rules.message_refusal(payload, names)

    def _refuse(self, refusal: rules.Refusal) -> web.Response:
        self.refusals.append(refusal)
        return _json(refusal[1], refusal[0])

    @staticmethod
    def _recorded(
        channel_id: int,
        payload: dict[str, Any],
        files: dict[str, tuple[str, bytes]],
        message: dict[str, Any],
    ) -> RecordedMessage:
        names = [name for name, _ in files.values()]
        shown = tuple(rules.shown(payload, names))
        return RecordedMessage(channel_id, payload, files, int(message["id"]), shown)

    def _interaction_callback(
        self, interaction_id: str, token: str, body: Any, files: dict[str, tuple[str, bytes]]
    ) -> web.Response:
        body = body or {}
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        if kind == 8 and token in self._autocompletes:  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
            problem = choices_problem(data.get("choices"), self._autocompletes[token])
            if problem is not None:
                self.refused_autocompletes.append({"token": token, "payload": body})
                return _json(problem, 400)
        self.interaction_responses.append(
            {"token": token, "kind": "callback", "payload": body, "files": files}
        )
        answer: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
            }
        }
        if kind in (4, 5):
            message = self._message(UPLOADS_CHANNEL, data, files)
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        elif kind == 7 and token in self._clicked:  # UPDATE_MESSAGE: edits the clicked one
            answer["interaction"]["type"] = 3
            answer["resource"] = {"type": kind, "message": self._update_message(token, data)}
        else:
            answer["resource"] = {"type": kind}
        return _json(answer)

    # ---------------------------------------------------------------- members, DMs, components
    # (issue 19) DM channels as Discord makes them (POST /users/@me/channels, one per user),
    # error 50007 for members who block DMs from the server, and component interactions
    # (button clicks and select menus) on messages the bot posted.

    def add_user(self, name: str, *, dms_closed: bool = False) -> int:
        """A server member who can use the commands, click buttons and receive DMs."""
        user_id = next(self._ids)
        self.user_names[user_id] = name
        if dms_closed:
            self.dms_closed.add(user_id)
        return user_id

    def dm_channel_of(self, user_id: int) -> int | None:
        return next((c for c, u in self.dm_channels.items() if u == user_id), None)

    def dms_to(self, user_id: int) -> list[RecordedMessage]:
        """The DMs the bot sent to this user (delivered ones only)."""
        channel = self.dm_channel_of(user_id)
        return [] if channel is None else self.messages_in(channel)

    def dm_attempts(self, user_id: int) -> int:
        """Every message the bot tried to send this user, refused (50007) or not."""
        channel = self.dm_channel_of(user_id)
        wanted = f"/channels/{channel}/messages"
        return sum(1 for r in self.requests if r.method == "POST" and r.path == wanted)

    def custom_ids(self, message_id: int) -> list[str]:
        components = self.message_json[message_id]["components"]
        return [c["custom_id"] for c in rules.walk(components) if "custom_id" in c]

    async def click(
        self,
        message_id: int,
        custom_id: str,
        *,
        user_id: int = USER_ID,
        roles: tuple[int, ...] = (),
        values: list[str] | None = None,
    ) -> str:
        """Push an INTERACTION_CREATE (type 3, MESSAGE_COMPONENT) for a click on the button
        (or, with ``values``, a choice in the select menu) ``custom_id`` of a posted message;
        returns the interaction token."""
        message = self.message_json[message_id]
        component = next(
            c for c in rules.walk(message["components"]) if c.get("custom_id") == custom_id
        )
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if values is not None:
            data["values"] = values
        token = f"interaction-token-{next(self._ids)}"
        self._clicked[token] = message_id
        channel_id = int(message["channel_id"])
        member = self.member(roles, EVERYONE_PERMS, user_id)
        return await self._interact(3, data, channel_id, member, token, message=message)

    def _update_message(self, token: str, data: dict[str, Any]) -> dict[str, Any]:
        message = self.message_json[self._clicked[token]]
        if "content" in data:
            message["content"] = data["content"] or ""
        if "components" in data:
            message["components"] = _components(data["components"] or [])
        if "embeds" in data:
            message["embeds"] = data["embeds"] or []
        return message

    def _members_route(
        self, method: str, path: str, body: Any, files: dict[str, tuple[str, bytes]]
    ) -> web.Response | None:
        if method == "POST" and path == "/users/@me/channels":
            recipient = int((body or {}).get("recipient_id", 0))
            if recipient not in self.user_names:
                return _json({"message": "Unknown User", "code": 10013}, 404)
            channel_id = self.dm_channel_of(recipient) or next(self._ids)
            self.dm_channels[channel_id] = recipient
            return _json(
                {
                    "id": str(channel_id),
                    "type": 1,
                    "last_message_id": None,
                    "flags": 0,
                    "recipients": [self._user(recipient, self.user_names[recipient])],
                }
            )
        match = re.fullmatch(r"/channels/(\d+)/messages", path)
        if method == "POST" and match and int(match[1]) in self.dm_channels:
            channel_id = int(match[1])
            if self.dm_channels[channel_id] in self.dms_closed:
                return _json({"message": "Cannot send messages to this user", "code": 50007}, 403)
            if refusal := self._message_refusal(body or {}, files):
                return self._refuse(refusal)
            message = self._message(channel_id, body or {}, files)
            message.pop("guild_id")
            self.messages.append(self._recorded(channel_id, body or {}, files, message))
            self.message_json[int(message["id"])] = message
            return _json(message)
        return None

    # ================================================================ message events, history,
    # reactions and message commands (drag-and-drop ingest, "Save to Immich")
    #
    # As Discord does: MESSAGE_CREATE reaches a session only with the GUILD_MESSAGES intent, and
    # carries content, attachments and embeds only with the privileged MESSAGE_CONTENT intent
    # (or when the bot wrote the message or is mentioned); asking for that intent while the
    # application does not have it switched on closes the gateway with 4014. The REST history
    # (no ``member`` on its messages) is emptied the same way when the switch is off.

    def _init_message_events(self) -> None:
        self._intents: dict[int, int] = {}  # id(websocket) -> intents of its IDENTIFY
        self._history: dict[int, list[dict[str, Any]]] = {}  # channel -> messages, oldest first
        self.guild_members: dict[int, tuple[str, tuple[int, ...]]] = {}  # user -> (name, roles)
        self.reactions: list[tuple[int, int, str]] = []  # (channel, message, emoji) by the bot
        self.history_requests: list[dict[str, str]] = []  # the query of each history read

    async def _identify_intents(self, ws: web.WebSocketResponse, identify: dict[str, Any]) -> bool:
        intents = int(identify.get("intents") or 0)
        if intents & MESSAGE_CONTENT_INTENT and not self.message_content_allowed:
            await ws.close(code=DISALLOWED_INTENTS, message=b"Disallowed intent(s).")
            return False
        self._intents[id(ws)] = intents
        return True

    def add_member(self, user_id: int, name: str, roles: tuple[int, ...] = ()) -> None:
        self.guild_members[user_id] = (name, roles)

    def _member_json(self, user_id: int, *, with_user: bool = True) -> dict[str, Any]:
        name, roles = self.guild_members.get(user_id, ("member", ()))
        member: dict[str, Any] = {
            "roles": [str(r) for r in roles],
            "joined_at": _now(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
        }
        if with_user:
            member["user"] = self._user(user_id, name)
        return member

    async def post_message(
        self,
        channel_id: int,
        content: str = "",
        *,
        files: tuple[tuple[str, bytes, str], ...] = (),
        author: int = USER_ID,
        roles: tuple[int, ...] | None = None,
        dispatch: bool = True,
    ) -> dict[str, Any]:
        """A member posts a message (files: name, bytes, content type); it joins the channel's
        history and, with ``dispatch``, goes out as MESSAGE_CREATE (False: posted while the bot
        was away). Returns the full message as Discord keeps it."""
        if roles is not None or author not in self.guild_members:
            self.add_member(
                author, "carol" if author == USER_ID else f"user{author % 1000}", roles or ()
            )
        message_id = next(self._ids)
        message = {
            "id": str(message_id),
            "channel_id": str(channel_id),
            "guild_id": str(GUILD_ID),
            "author": self._user(author, self.guild_members[author][0]),
            "content": content,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [self.add_attachment(n, d, c) for n, d, c in files],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
            "components": [],
        }
        self._history.setdefault(channel_id, []).append(message)
        if dispatch:
            await self._dispatch_message(message)
        return message

    async def _dispatch_message(self, message: dict[str, Any]) -> None:
        event = {
            **message,
            "member": self._member_json(int(message["author"]["id"]), with_user=False),
        }
        for ws in list(self._sockets):
            intents = self._intents.get(id(ws), 0)
            if not intents & GUILD_MESSAGES_INTENT:
                continue
            shown = event if intents & MESSAGE_CONTENT_INTENT else self._without_content(event)
            await self._send_event(ws, "MESSAGE_CREATE", shown)

    def _without_content(self, message: dict[str, Any]) -> dict[str, Any]:
        mentioned = any(int(u["id"]) == BOT_ID for u in message.get("mentions", []))
        if int(message["author"]["id"]) == BOT_ID or mentioned:
            return message
        return {**message, "content": "", "attachments": [], "embeds": [], "components": []}

    def history(self, channel_id: int) -> list[dict[str, Any]]:
        return list(self._history.get(channel_id, []))

    def _message_route(self, method: str, path: str, request: web.Request) -> web.Response | None:
        if method == "GET" and (m := re.fullmatch(r"/channels/(\d+)/messages", path)):
            return self._read_history(int(m[1]), dict(request.query))
        if m := re.fullmatch(r"/channels/(\d+)/messages/(\d+)/reactions/([^/]+)/@me", path):
            return self._react(method, int(m[1]), int(m[2]), unquote(m[3]))
        if method == "GET" and (m := re.fullmatch(r"/guilds/(\d+)/members/(\d+)", path)):
            if int(m[2]) not in self.guild_members:
                return _json({"message": "Unknown Member", "code": 10007}, 404)
            return _json(self._member_json(int(m[2])))
        return None

    def _read_history(self, channel_id: int, query: dict[str, str]) -> web.Response:
        """Discord's rules: ``limit`` 1-100 (default 50); with ``after`` the messages just after
        it, without it the newest; newest first either way; none without Read Message History."""
        if channel_id not in self.channels:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        self.history_requests.append(query)
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 100:
            return _json(
                {
                    "message": "Invalid Form Body",
                    "code": 50035,
                    "errors": {"limit": {"_errors": [{"code": "NUMBER_TYPE_MAX"}]}},
                },
                400,
            )
        deny = (
            int(self.channels[channel_id]["permission_overwrites"][0]["deny"])
            if (self.channels[channel_id]["permission_overwrites"])
            else 0
        )
        if deny & READ_HISTORY:
            return _json([])
        messages = sorted(self._history.get(channel_id, []), key=lambda m: int(m["id"]))
        if "after" in query:
            page = [m for m in messages if int(m["id"]) > int(query["after"])][:limit]
        else:
            if "before" in query:
                messages = [m for m in messages if int(m["id"]) < int(query["before"])]
            page = messages[-limit:]
        page.reverse()
        if not self.message_content_allowed:
            page = [self._without_content(m) for m in page]
        return _json(page)

    def _react(self, method: str, channel_id: int, message_id: int, emoji: str) -> web.Response:
        if not any(int(m["id"]) == message_id for m in self._history.get(channel_id, [])):
            return _json({"message": "Unknown Message", "code": 10008}, 404)
        if method == "PUT":
            self.reactions.append((channel_id, message_id, emoji))
        return web.Response(status=204)

    def reactions_on(self, message_id: int) -> list[str]:
        return [emoji for _, mid, emoji in self.reactions if mid == message_id]

    def replies_to(self, message_id: int) -> list[RecordedMessage]:
        return [
            m
            for m in self.messages
            if str((m.payload.get("message_reference") or {}).get("message_id")) == str(message_id)
        ]

    async def message_command(
        self,
        name: str,
        target: dict[str, Any],
        *,
        roles: tuple[int, ...] = (),
    ) -> str:
        """Right-click a message > Apps > ``name``: an application command interaction of type
        3 (MESSAGE) with the message in ``resolved.messages`` (content included: interactions
        need no intent). Returns the interaction token."""
        token = f"interaction-token-{next(self._ids)}"
        channel_id = int(target["channel_id"])
        command_id = next(
            (
                c["id"]
                for scope in self.synced_commands.values()
                for c in scope
                if c.get("name") == name and c.get("type") == 3
            ),
            str(next(self._ids)),
        )
        data = {
            "id": command_id,
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
            "guild_id": str(GUILD_ID),
        }
        return await self._interact(2, data, channel_id, self.member(roles), token)

    # ================================================================ end of message events

    # ---------------------------------------------------------------- gateway

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if not self.gateway_open:
            return web.Response(status=503)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        try:
            await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}}))
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(msg.data)
                op = frame.get("op")
                if op == 1:
                    await ws.send_str(json.dumps({"op": 11}))
                elif op == 2:
                    if not await self._identify_intents(ws, frame.get("d") or {}):
                        break
                    self.identifies += 1
                    await self._send_event(
                        ws,
                        "READY",
                        {
                            "v": 10,
                            "user": self._user(BOT_ID, "sidecar", bot=True),
                            "guilds": [{"id": str(GUILD_ID), "unavailable": True}],
                            "session_id": "fake-session",
                            "resume_gateway_url": self.base_url.replace("http://", "ws://")
                            + "/gateway",
                            "application": {"id": str(APP_ID), "flags": 0},
                            "private_channels": [],
                            "relationships": [],
                        },
                    )
                    await self._send_event(ws, "GUILD_CREATE", self._guild())
                elif op == 6:
                    self.resumes += 1
                    await self._send_event(ws, "RESUMED", {})
        finally:
            self._sockets.remove(ws)
            self._intents.pop(id(ws), None)
        return ws

    async def _send_event(
        self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]
    ) -> None:
        self._seq += 1
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": self._seq, "d": data}))


# Below the time, a Discord id holds the internal worker (bits 21-17) and process (16-12) that
# made it and an increment (Discord's documented example 175928847299117063: worker 1, process
# 0, increment 7). The fake is worker 1: a client's ``time_snowflake(moment)``, all those bits 0,
# names the start of a millisecond, and a message made in that millisecond comes after it.
WORKER_BITS = 1 << 17


def _snowflakes() -> Iterator[int]:
    """Ids as Discord makes them: the time in their top bits, so that a later message has a
    larger id (history reads and "after" depend on it), the worker below, and unique."""
    last = 0
    while True:
        last = max(last + 1, discord.utils.time_snowflake(datetime.now(UTC)) | WORKER_BITS)
        yield last


def _components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord gives them back: action rows with what each button was sent
    with, layout components (components v2) as sent."""
    return [
        {
            "type": int(row.get("type", 1)),
            "components": [dict(c) for c in row.get("components", [])],
        }
        if int(row.get("type", 1)) == rules.ACTION_ROW
        else json.loads(json.dumps(row))
        for row in rows
    ]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": JSON, **(headers or {})},
    )


async def _read_body(request: web.Request) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    if not request.can_read_body:
        return None, {}
    content_type = request.headers.get("Content-Type", "")
    if content_type.startswith("multipart/"):
        body: Any = None
        files: dict[str, tuple[str, bytes]] = {}
        reader = await request.multipart()
        async for part in reader:
            assert isinstance(part, BodyPartReader)  # Discord's form has no nested parts
            data = await part.read()
            if part.name == "payload_json":
                body = json.loads(data)
            elif part.name:
                files[part.name] = (part.filename or "", bytes(data))
        return body, files
    raw = await request.read()
    return (json.loads(raw) if raw else None), {}
