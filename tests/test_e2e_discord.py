"""The whole sidecar in-process against the fake Immich and the fake Discord on 127.0.0.1, once
with a bot channel target and once with a webhook target: what lands in Discord."""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidecar.app import Sidecar
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich, asset_picture

pytestmark = pytest.mark.e2e
WAIT = 15.0

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice, Bob]}
      targets: [discord]
      mention_roles: ["900000000000000021"]
    """)


class World:
    def __init__(
        self,
        kind: str,
        immich: FakeImmich,
        discord: fd.FakeDiscord,
        tmp: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.kind, self.immich, self.discord = kind, immich, discord
        self.config = tmp / "config" / "config.yaml"
        self.config.parent.mkdir()
        self.alice = immich.add_person("Alice")
        immich.add_person("Bob")
        self.carol = immich.add_person("Carol")
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        if kind == "bot":
            monkeypatch.setenv("DISCORD_TOKEN", fd.TOKEN)
            target = f'discord: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}'
            extra = "discord:\n  token: ${DISCORD_TOKEN}\n"
        else:
            monkeypatch.setenv("HOOK", f"{discord.base_url}/api/v10/webhooks/77/hook-token")
            target = "discord: {webhook_url: '${HOOK}'}"
            extra = ""
        write_config(
            self.config,
            immich_url=immich.url,
            state=tmp / "state.db",
            rules=RULES,
            targets=target,
            metrics_port=free_port(),
            extra=extra,
        )

    def posts(self) -> list[fd.RecordedMessage]:
        if self.kind == "bot":
            return self.discord.messages_in(fd.PHOTOS_CHANNEL)
        return self.discord.interaction_messages  # the fake records webhook executions here

    def posts_of(self, asset_id: str) -> list[fd.RecordedMessage]:
        return [m for m in self.posts() if asset_id in json.dumps(m.payload)]

    def upload(self, *people: str) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), people=people)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < WAIT, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


@pytest.fixture(params=["bot", "webhook"])
async def world(request, tmp_path, monkeypatch):
    discord = fd.FakeDiscord()
    await discord.start()
    with discord.patched():
        async with FakeImmich() as immich:
            yield World(request.param, immich, discord, tmp_path, monkeypatch)
    await discord.stop()


async def running(world: World) -> Sidecar:
    sidecar = Sidecar(world.config, stdout=io.StringIO())
    await sidecar.start()
    return sidecar


async def test_notification_carries_the_picture_and_a_link(world):
    sidecar = await running(world)
    try:
        asset = world.upload(world.alice)
        other = world.upload(world.carol)
        await wait_until(lambda: world.posts_of(asset), "the notification")
        await asyncio.sleep(2.5)  # more polls: nothing more may arrive
    finally:
        await sidecar.stop()
    [post] = world.posts_of(asset)
    assert world.posts_of(other) == []
    [(name, data)] = post.files.values()
    assert data == asset_picture(asset, "preview")
    text, gallery, row = post.payload["components"]  # the default layout: a gallery
    assert gallery["items"][0]["media"]["url"] == f"attachment://{name}"
    assert post.shown == (name,)
    assert f"https://photos.example.test/photos/{asset}" in json.dumps(text)
    assert row["components"][0]["url"] == f"https://photos.example.test/photos/{asset}"
    assert "Alice" in text["content"]
    assert post.payload["allowed_mentions"]["parse"] == []
    assert [str(r) for r in post.payload["allowed_mentions"]["roles"]] == ["900000000000000021"]
    assert "<@&900000000000000021>" in text["content"]


async def test_late_face_and_restart_deliver_exactly_once(world):
    sidecar = await running(world)
    try:
        late = world.upload()
        await asyncio.sleep(2.5)
        assert world.posts_of(late) == []
        world.immich.recognise(late, world.alice)
        await wait_until(lambda: world.posts_of(late), "the late-face notification")
    finally:
        await sidecar.stop()
    sidecar = await running(world)  # a restart sees the same assets again
    try:
        after = world.upload(world.alice)
        await wait_until(lambda: world.posts_of(after), "the notification after restart")
        await asyncio.sleep(2.5)
    finally:
        await sidecar.stop()
    assert len(world.posts_of(late)) == 1
    assert len(world.posts_of(after)) == 1
