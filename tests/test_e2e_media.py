"""Galleries, videos and links end to end (issue 26): the real ``immich-sidecar run`` process
(through ``tests.fakes.run_sidecar``) against the fake Immich and the fake Discord on 127.0.0.1.

- a batch of 5 photos is ONE message to a bot channel and to a webhook, a 5-picture gallery
  (components v2 with the flag), and one message of embeds for a webhook that refuses
  components; 12 photos follow the batching rules (10 + 2);
- a 3 MB video is attached as video/mp4, a 30 MB one is not (its preview, its link and why);
  files over 10 MiB go out within the limit; a 413 gets one smaller retry, not a loop;
- ``links: shared``: one ``POST /api/shared-links`` per message with the configured expiry, the
  message shows ``EXTERNAL_URL/share/KEY``, and a sidecar killed after the link was made and
  before the send reuses the key after its restart; without ``sharedLink.create`` the post goes
  out with a link into Immich and one log line.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_harness import free_port, write_config
from tests.fakes import discord_components as rules
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fault_rig import WrappedSidecar

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
EXTERNAL = "https://photos.example.test"
SHARE_OFF = "shared links are off: the Immich API key lacks sharedLink.create"


class World:
    def __init__(self, immich: FakeImmich, discord: fd.FakeDiscord, tmp: Path) -> None:
        self.immich, self.discord, self.tmp = immich, discord, tmp
        self.alice = immich.add_person("Alice")
        self.config = tmp / "config.yaml"
        self.port = free_port()
        self.hook = discord.add_webhook(fd.PHOTOS_CHANNEL, "Photos")
        self.plain_channel = discord.add_channel("old-webhooks")
        self.plain_hook = discord.add_webhook(self.plain_channel, "Old", components=False)
        self.env = {
            "IMMICH_API_KEY": immich.api_key,
            "DISCORD_TOKEN": fd.TOKEN,
            "FAKE_DISCORD_URL": discord.base_url,
            "HOOK": self.hook,
            "PLAIN_HOOK": self.plain_hook,
            "FAKE_DISPATCH_RETRY": "0.2,0.5",
        }
        self.process: WrappedSidecar | None = None

    def write(self, targets: str, rule_targets: str, extra: str = "") -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.tmp / "state.db",
            rules=f"- name: kids\n  people: {{any: [Alice]}}\n  targets: [{rule_targets}]",
            targets=textwrap.dedent(targets),
            metrics_port=self.port,
            extra=extra,
        )

    async def start(self, *, bot: bool = False) -> WrappedSidecar:
        self.process = WrappedSidecar(self.config, self.env, self.port)
        await self.process.start()
        if bot:
            await self.process.wait_for_log("connected to Discord")
        return self.process

    async def stop(self) -> None:
        if self.process is not None:
            await self.process.stop()
            self.process = None

    def photos(self, n: int, **fields: Any) -> list[str]:
        return self.immich.add_assets_bulk(
            n, created_at=datetime.now(UTC), people=[self.alice], **fields
        )

    def video(self, size: int, **fields: Any) -> str:
        return self.immich.add_asset(
            type="VIDEO",
            created_at=datetime.now(UTC),
            people=[self.alice],
            video_size=size,
            **fields,
        )

    def in_channel(self, channel: int, ids: list[str]) -> list[fd.RecordedMessage]:
        """The messages in ``channel`` that show any of ``ids``."""
        return [
            m
            for m in self.discord.messages_in(channel)
            if any(i in json.dumps(m.payload) for i in ids)
        ]

    async def wait_shown(
        self, channel: int, ids: list[str], times: int = 1
    ) -> list[fd.RecordedMessage]:
        """The messages in ``channel`` once each of ``ids`` is shown ``times`` times."""
        assert self.process is not None

        def shown() -> list[str]:
            return [n.split(".")[0] for m in self.in_channel(channel, ids) for n in m.shown]

        await self.process.wait_until(
            lambda: all(shown().count(i) >= times for i in ids), f"{len(ids)} pictures"
        )
        return self.in_channel(channel, ids)

    def executions(self, url: str) -> list[fd.RecordedRequest]:
        path = "/" + url.split("/api/v10/")[1]
        return [r for r in self.discord.requests if r.method == "POST" and r.path == path]


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


def gallery_of(message: fd.RecordedMessage) -> list[str]:
    assert message.payload["flags"] & rules.IS_COMPONENTS_V2
    [gallery] = [c for c in message.payload["components"] if c["type"] == rules.MEDIA_GALLERY]
    return [item["media"]["url"].removeprefix("attachment://") for item in gallery["items"]]


async def test_five_photos_are_one_gallery_each_and_twelve_follow_the_batching_rules(world):
    world.write(
        f"""\
        family: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}
        hook: {{webhook_url: "${{HOOK}}"}}
        old: {{webhook_url: "${{PLAIN_HOOK}}"}}
        """,
        "family, hook, old",
        extra="discord:\n  token: ${DISCORD_TOKEN}\n",
    )
    process = await world.start(bot=True)
    five = world.photos(5)
    bot_posts = await world.wait_shown(fd.PHOTOS_CHANNEL, five, times=2)
    await process.wait_until(lambda: len(world.in_channel(world.plain_channel, five)) == 1, "old")
    # the bot's and the webhook's messages both land in #photos: one each
    assert len(bot_posts) == 2
    for message in bot_posts:
        assert sorted(gallery_of(message)) == sorted(f"{i}.jpg" for i in five)
        assert list(message.shown) == gallery_of(message)
    [hooked] = world.executions(world.hook)
    assert hooked.query["with_components"] == "true"
    [old] = world.in_channel(world.plain_channel, five)
    assert "components" not in old.payload
    assert sorted(e["image"]["url"] for e in old.payload["embeds"]) == sorted(
        f"attachment://{i}.jpg" for i in five
    )
    assert len(world.executions(world.plain_hook)) == 2  # the gallery refused, then embeds
    assert sum("sending its messages as embeds" in line for line in process.stderr) == 1

    twelve = world.photos(12)
    posts = await world.wait_shown(fd.PHOTOS_CHANNEL, twelve, times=2)
    assert sorted(len(gallery_of(m)) for m in posts) == [2, 2, 10, 10]
    await process.wait_until(
        lambda: len(world.in_channel(world.plain_channel, twelve)) == 2, "the embeds messages"
    )
    assert len(world.executions(world.plain_hook)) == 4  # straight to embeds now


async def test_videos_attach_or_say_why_and_no_message_is_over_ten_mib(world):
    world.write('hook: {webhook_url: "${HOOK}"}', "hook")
    process = await world.start()
    small, large = world.video(3 * MIB), world.video(30 * MIB)
    [message] = await world.wait_shown(fd.PHOTOS_CHANNEL, [small, large])
    assert message.file_types() == {f"{small}.mp4": "video/mp4", f"{large}.jpg": "image/jpeg"}
    text = message.payload["components"][0]["content"]
    assert "too large to attach: 30 MB" in text and f"{EXTERNAL}/photos/{large}" in text
    assert len(world.immich.api_requests("GET", f"/api/assets/{large}/video/playback")) == 1

    # Taken a minute apart, so the order of the gallery (newest first) is known: 3 + 3 + 4 MiB,
    # then 4 + 4 MiB.
    taken = datetime.now(UTC) - timedelta(hours=1)
    heavy = [world.video(4 * MIB, taken_at=taken + timedelta(minutes=n)) for n in range(3)]
    heavy += [
        world.immich.add_asset(
            created_at=datetime.now(UTC),
            taken_at=taken + timedelta(minutes=5 + n),
            people=[world.alice],
            preview_size=3 * MIB,
        )
        for n in range(2)
    ]
    messages = await world.wait_shown(fd.PHOTOS_CHANNEL, heavy)
    assert [m.size <= rules.UPLOAD_LIMIT for m in messages] == [True] * len(messages)
    assert len(messages) == 2 and world.discord.refusals == []
    assert sum(name.endswith(".mp4") for m in messages for name in m.shown) == 3

    world.discord.fail(
        "POST",
        "/" + world.hook.split("/api/v10/")[1],
        413,
        body={"message": "Request entity too large", "code": 40005},
    )
    before = len(world.executions(world.hook))
    three = world.photos(3, preview_size=MIB)
    [stepped] = await world.wait_shown(fd.PHOTOS_CHANNEL, three)
    assert len(world.executions(world.hook)) == before + 2  # refused once, one smaller retry
    assert sorted(stepped.file_names) == sorted(f"{i}.webp" for i in three)
    await process.wait_for_metric("immich_sidecar_discord_too_large_total", 'target="hook"', 1)
    assert await process.metric("immich_sidecar_discord_too_large_total", 'target="hook"') == 1


SHARING = """\
    hook: {webhook_url: "${HOOK}", links: shared, shared_links: {expire: 7d}}
    """


def share_keys(message: fd.RecordedMessage) -> set[str]:
    text = json.dumps(message.payload)
    marker = f"{EXTERNAL}/share/"
    return {part.split('"')[0].split(")")[0] for part in text.split(marker)[1:]}


async def test_one_shared_link_per_message_kept_across_a_kill_before_the_send(world):
    world.write(SHARING, "hook")
    process = await world.start()
    first = world.photos(2)
    [message] = await world.wait_shown(fd.PHOTOS_CHANNEL, first)
    [create] = world.immich.api_requests("POST", "/api/shared-links")
    assert create.json["type"] == "INDIVIDUAL" and sorted(create.json["assetIds"]) == sorted(first)
    expires = datetime.fromisoformat(create.json["expiresAt"].replace("Z", "+00:00"))
    assert (
        timedelta(days=7) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=7)
    )
    assert (create.json["allowDownload"], create.json["showMetadata"]) == (False, False)
    [key] = share_keys(message)
    assert world.immich.shared_links.by_key(key) is not None
    [button] = message.payload["components"][-1]["components"]
    assert button["url"] == f"{EXTERNAL}/share/{key}"

    # Killed the moment its next message reaches Discord, before Discord posts it.
    create_message = world.discord._create_message
    killed: list[bool] = []

    def kill_on_send(channel_id: int, body: Any, files: Any) -> Any:
        if not killed:
            killed.append(True)
            assert process._proc is not None
            process._proc.send_signal(signal.SIGKILL)
            return fd._json({"message": "500: Internal Server Error", "code": 0}, 500)
        return create_message(channel_id, body, files)

    world.discord._create_message = kill_on_send
    second = world.photos(3)
    assert await process.exited() == -signal.SIGKILL
    world.process = None
    assert len(world.immich.api_requests("POST", "/api/shared-links")) == 2
    made = world.immich.shared_links.links
    with sqlite3.connect(world.tmp / "state.db") as db:
        stored = {row[0] for row in db.execute("SELECT key FROM shared_link")}
    assert stored == {link.key for link in made.values()}  # kept before the send
    await world.start()
    [again] = await world.wait_shown(fd.PHOTOS_CHANNEL, second)
    assert len(world.immich.api_requests("POST", "/api/shared-links")) == 2  # none more
    [reused] = share_keys(again)
    assert reused in stored - {key}


async def test_without_the_permission_the_post_links_into_immich_said_once(world):
    world.immich.permissions = [
        "asset.read",
        "asset.view",
        "asset.statistics",
        "person.read",
        "user.read",
    ]
    world.write(SHARING, "hook")
    process = await world.start()
    ids = world.photos(1)
    [message] = await world.wait_shown(fd.PHOTOS_CHANNEL, ids)
    assert f"{EXTERNAL}/photos/{ids[0]}" in json.dumps(message.payload)
    assert "/share/" not in json.dumps(message.payload)
    assert world.immich.api_requests("POST", "/api/shared-links") == []
    more = world.photos(1)
    await world.wait_shown(fd.PHOTOS_CHANNEL, more)
    assert sum(SHARE_OFF in line for line in process.stderr) == 1
    assert (await process.readyz()).status_code == 200  # it still posts: ready
