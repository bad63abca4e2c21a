"""Drag-and-drop ingest end to end: the real ``immich-sidecar run`` process (through
``tests.fakes.run_sidecar``) against the fake Immich and the fake Discord on 127.0.0.1."""

from __future__ import annotations

import re
import signal
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fault_rig import WrappedSidecar

pytestmark = pytest.mark.e2e

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200))
JPEG_2 = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(200, 0, -1))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
TEXT = b"shopping list: milk, eggs\n"
LINK = re.compile(r"/photos/([0-9a-f-]{36})")
UPLOADERS = (fd.UPLOADER_ROLE,)
DESCRIPTION = "Uploaded by carol in #uploads"
OFF_LINE = "discord.ingest is off: Discord refused the Message Content intent"

CONFIG = textwrap.dedent(f"""\
    discord:
      token: ${{DISCORD_TOKEN}}
      commands:
        upload:
          allowed_roles: ["{fd.UPLOADER_ROLE}"]
      ingest:
        - channel_id: "{fd.UPLOADS_CHANNEL}"
    """)


class World:
    def __init__(self, immich: FakeImmich, discord: fd.FakeDiscord, tmp: Path) -> None:
        self.immich, self.discord = immich, discord
        self.config = tmp / "config.yaml"
        self.port = free_port()
        write_config(
            self.config,
            immich_url=immich.url,
            state=tmp / "state.db",
            rules="- name: everything\n  targets: [photos, uploads]",
            targets=(
                f'photos: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}\n'
                f'uploads: {{channel_id: "{fd.UPLOADS_CHANNEL}"}}'
            ),
            metrics_port=self.port,
            extra=CONFIG,
        )
        self.env = {
            "IMMICH_API_KEY": immich.api_key,
            "DISCORD_TOKEN": fd.TOKEN,
            "FAKE_DISCORD_URL": discord.base_url,
        }
        self.process: WrappedSidecar | None = None

    async def start(self) -> WrappedSidecar:
        self.process = WrappedSidecar(self.config, self.env, self.port)
        await self.process.start()
        await self.process.wait_for_log("connected to Discord")
        return self.process

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
            self.process = None

    async def post(self, *files: tuple[str, bytes, str], live: bool = True) -> dict[str, Any]:
        return await self.discord.post_message(
            fd.UPLOADS_CHANNEL, files=files, roles=UPLOADERS, dispatch=live
        )

    async def reply_to(self, message: dict[str, Any]) -> str:
        assert self.process is not None
        message_id = int(message["id"])
        await self.process.wait_until(
            lambda: (
                bool(self.discord.replies_to(message_id))
                and bool(self.discord.reactions_on(message_id))
            ),
            f"the answer to message {message_id}",
        )
        [reply] = self.discord.replies_to(message_id)
        return str(reply.payload["content"])

    def created(self) -> int:
        """Assets Immich created from uploads (a duplicate creates none)."""
        return sum(r.status == 201 for r in self.immich.api_requests("POST", "/api/assets"))


@pytest.fixture
async def world(tmp_path) -> AsyncIterator[World]:
    discord = fd.FakeDiscord()
    await discord.start()
    async with FakeImmich() as immich:
        made = World(immich, discord, tmp_path)
        try:
            yield made
        finally:
            await made.stop()
    await discord.stop()


async def test_ingest_uploads_answers_once_and_catches_up(world):
    process = await world.start()
    message = await world.post(
        ("a.jpg", JPEG, "image/jpeg"), ("b.png", PNG, "image/png"), ("list.txt", TEXT, "text/plain")
    )
    text = await world.reply_to(message)
    assets = LINK.findall(text)
    assert len(assets) == 2 and world.created() == 2
    assert [world.immich.asset_description(a) for a in assets] == [DESCRIPTION, DESCRIPTION]
    assert "`list.txt`: refused, not a photo or video Immich can take." in text
    assert world.discord.reactions_on(int(message["id"])) == [fd_warning()]
    # The rule announces both in #photos, never back into the channel they came from.
    await process.wait_until(
        lambda: all(
            any(a in str(m.payload) for m in world.discord.messages_in(fd.PHOTOS_CHANNEL))
            for a in assets
        ),
        "the announcement in #photos",
    )
    await process.wait_for_log("came in through this channel, not announced back")
    assert not [m for m in world.discord.messages_in(fd.UPLOADS_CHANNEL) if m.payload.get("embeds")]

    again = await world.post(("same.jpg", JPEG, "image/jpeg"))
    text = await world.reply_to(again)
    assert (
        f"`same.jpg`: already in Immich, <https://photos.example.test/photos/{assets[0]}>" in text
    )
    assert world.discord.reactions_on(int(again["id"])) == ["\N{WHITE HEAVY CHECK MARK}"]
    await world.stop()

    away = await world.post(("away.jpg", JPEG_2, "image/jpeg"), live=False)
    await world.start()
    text = await world.reply_to(away)
    assert "`away.jpg`: uploaded" in text and world.created() == 3
    # The restart read the history again: nothing before was uploaded or answered twice.
    assert len(world.discord.replies_to(int(message["id"]))) == 1
    assert len(world.immich.api_requests("POST", "/api/assets")) == 4


def fd_warning() -> str:
    return "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}"


async def test_killed_between_upload_and_store_is_already_in_immich_after_restart(world):
    """The process dies the moment Immich has the first file, before the answer reaches it (so
    nothing about the upload is in the state file). At the next start the message's claim is
    still open: it is read again from the history and uploaded again, and Immich, which knows
    the file by its checksum, answers "duplicate": still one asset, and the reply says so."""
    process = await world.start()
    record = world.immich._record

    def kill_once_uploaded(request: Any, body: Any, status: int, size: int) -> None:
        record(request, body, status, size)
        if request.path == "/api/assets" and status == 201 and world.created() == 1:
            assert process._proc is not None
            process._proc.send_signal(signal.SIGKILL)  # before the answer leaves the fake

    world.immich._record = kill_once_uploaded
    message = await world.post(("a.jpg", JPEG, "image/jpeg"), ("b.png", PNG, "image/png"))
    assert await process.exited() == -signal.SIGKILL
    world.process = None
    assert world.discord.replies_to(int(message["id"])) == []
    await world.start()
    text = await world.reply_to(message)
    assert world.created() == 2  # a.jpg once, b.png once
    assert "`a.jpg`: already in Immich" in text and "`b.png`: uploaded" in text


async def test_without_the_intent_one_line_and_the_rest_of_the_bot_works(world):
    world.discord.message_content_allowed = False
    process = await world.start()
    assert [line for line in process.stderr if "Message Content" in line] == [
        line for line in process.stderr if OFF_LINE in line
    ]
    assert len([line for line in process.stderr if OFF_LINE in line]) == 1
    photo = world.immich.add_asset(created_at=datetime.now(UTC))
    await process.wait_until(
        lambda: any(photo in str(m.payload) for m in world.discord.messages_in(fd.PHOTOS_CHANNEL)),
        "a notification",
    )
    # "Save to Immich" needs no intent: the interaction carries the message.
    message = await world.discord.post_message(
        fd.PHOTOS_CHANNEL, files=(("beach.jpg", JPEG, "image/jpeg"),), dispatch=False
    )
    token = await world.discord.message_command("Save to Immich", message, roles=UPLOADERS)
    await process.wait_until(
        lambda: any(r["kind"] != "callback" for r in world.discord.responses_for(token)),
        "the Save to Immich answer",
    )
    [answer] = [r for r in world.discord.responses_for(token) if r["kind"] != "callback"]
    [asset] = LINK.findall(str(answer["payload"]))
    assert world.created() == 1
    assert world.immich.asset_description(asset) == "Uploaded by carol in #photos"
