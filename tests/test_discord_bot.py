"""The bot and its sink, with the real discord.py client against the fake Discord."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidecar.config.model import (
    DiscordSettings,
    ImmichSettings,
    MetricsSettings,
    PollSettings,
    Secret,
    Settings,
    StateSettings,
    UploadCommand,
)
from sidecar.discord.bot import DiscordStartupError, SidecarBot
from sidecar.engine.status import StatusInfo
from sidecar.immich.models import Album, Person, UploadResult, VideoFile, VideoTooLarge
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import PermanentDeliveryError, TemporaryDeliveryError
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.targets.presentation import Presentation
from tests.fakes import fake_discord as fd
from tests.test_render import make_asset, make_batch

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256))


class FakeImmich:
    """The Immich edge the bot uses, with real bytes and a record of every call."""

    def __init__(self) -> None:
        self.people = [
            Person("p-alice", "Alice"),
            Person("p-alicia", "Alicia"),
            Person("p-bob", "Bob"),
        ]
        self.faces = {"p-alice": b"\xff\xd8\xffFACE-alice"}
        self.counts = {"p-alice": 42, "p-bob": 1}
        self.known_checksums: dict[bytes, str] = {}
        self.uploads: list[tuple[str, bytes, str]] = []
        self.descriptions: dict[str, str] = {}
        self.albums: dict[str, list[str]] = {}
        self.thumbnail_calls: list[str] = []

    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]:
        self.thumbnail_calls.append(asset_id)
        return JPEG + asset_id.encode(), "image/jpeg"

    async def video_playback(self, asset_id: str, max_bytes: int) -> VideoFile | VideoTooLarge:
        """Every video is a short clip, as a phone's."""
        return VideoFile(b"\x00\x00\x00\x18ftypmp42" + asset_id.encode(), "video/mp4")

    async def search_person(self, name: str) -> list[Person]:
        return [p for p in self.people if name.casefold() in p.name.casefold()]

    async def person_thumbnail(self, person_id: str) -> bytes | None:
        return self.faces.get(person_id)

    async def person_statistics(self, person_id: str) -> int:
        return self.counts.get(person_id, 0)

    async def upload_asset(
        self,
        filename: str,
        data: bytes,
        *,
        file_created_at: datetime,
        file_modified_at: datetime,
        content_type: str,
    ) -> UploadResult:
        self.uploads.append((filename, data, content_type))
        if data in self.known_checksums:
            return UploadResult(self.known_checksums[data], duplicate=True)
        asset_id = f"new-{len(self.known_checksums) + 1}"
        self.known_checksums[data] = asset_id
        return UploadResult(asset_id, duplicate=False)

    async def set_description(self, asset_id: str, text: str) -> None:
        self.descriptions[asset_id] = text

    async def add_to_album(self, album_id: str, asset_ids: list[str]) -> None:
        self.albums.setdefault(album_id, []).extend(asset_ids)

    async def list_albums(self) -> list[Album]:
        return [Album("8c0e5c8e-1d7a-4c43-9f43-7d1c2a9b0e11", "From Discord")]

    async def key_permissions(self) -> frozenset[str]:
        return frozenset({"all"})


def make_settings(targets=None, upload: UploadCommand | None = None) -> Settings:
    if targets is None:
        targets = {"photos": ChannelTarget("photos", fd.PHOTOS_CHANNEL)}
    return Settings(
        source=Path("config.yaml"),
        content_hash="x",
        immich=ImmichSettings(
            "http://immich:2283", Secret("immich-key"), "https://photos.example.org"
        ),
        discord=DiscordSettings(token=Secret(fd.TOKEN), upload=upload or UploadCommand()),
        poll=PollSettings(),
        state=StateSettings(),
        metrics=MetricsSettings(),
        targets=targets,
        rules=(),
    )


async def fixed_status() -> StatusInfo:
    return StatusInfo(
        immich_reachable=True,
        immich_version="2.7.5",
        last_successful_poll=datetime(2024, 5, 1, 12, tzinfo=UTC),
        outbox_pending=3,
        config_loaded_at=datetime(2024, 5, 1, 8, tzinfo=UTC),
    )


@pytest.fixture
def immich() -> FakeImmich:
    return FakeImmich()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


async def start_bot(fake, immich, metrics, settings=None) -> tuple[SidecarBot, list[str]]:
    bot = SidecarBot(
        settings or make_settings(), immich, metrics, fixed_status, guild_ready_timeout=0.05
    )
    await bot.__aenter__()
    try:
        problems = await bot.launch(Secret(fd.TOKEN), ready_timeout=10)
    except BaseException:
        await bot.close()
        raise
    return bot, problems


@pytest.fixture
async def bot(fake, immich, metrics) -> AsyncIterator[SidecarBot]:
    bot, problems = await start_bot(fake, immich, metrics)
    assert problems == []
    yield bot
    await bot.close()


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    return metrics.registry.get_sample_value(name, labels or {}) or 0.0


def photos_sink(
    bot: SidecarBot,
    channel_id: int = fd.PHOTOS_CHANNEL,
    name: str = "photos",
    layout: str = "gallery",
):
    return bot.sink_for(ChannelTarget(name, channel_id, presentation=Presentation(layout=layout)))


async def test_notification_posts_a_gallery_through_discord_py(fake, bot, metrics):
    """The default layout as discord.py sends it: the components v2 flag, a text display that
    pings the rule's role, a media gallery showing the attached picture, the Open button."""
    await photos_sink(bot).send(make_batch([make_asset(1)], roles=(fd.MEMBER_ROLE,)))
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.payload["flags"] == 1 << 15
    assert not message.payload.get("content") and not message.payload.get("embeds")
    text, gallery, row = message.payload["components"]
    assert text["content"].startswith(f"<@&{fd.MEMBER_ROLE}> ")
    assert gallery["items"][0]["media"]["url"] == "attachment://asset-1.jpg"
    assert message.shown == ("asset-1.jpg",)
    [button] = row["components"]
    assert button["url"] == "https://photos.example.org/photos/asset-1"
    assert message.payload["allowed_mentions"]["roles"] == [fd.MEMBER_ROLE]
    assert message.payload["enforce_nonce"] is True


async def test_notification_posts_embed_with_attached_picture(fake, bot, immich, metrics):
    asset = make_asset(1)
    await photos_sink(bot, layout="embeds").send(make_batch([asset], roles=(fd.MEMBER_ROLE,)))
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    [embed] = message.payload["embeds"]
    assert embed["image"]["url"] == "attachment://asset-1.jpg"
    assert embed["url"] == "https://photos.example.org/photos/asset-1"
    assert message.files["files[0]"] == ("asset-1.jpg", JPEG + b"asset-1")
    assert message.payload["content"].startswith(f"<@&{fd.MEMBER_ROLE}>")
    mentions = message.payload["allowed_mentions"]
    assert mentions["parse"] == []
    assert mentions["roles"] == [fd.MEMBER_ROLE]
    assert mentions.get("replied_user", False) is False
    assert message.payload["enforce_nonce"] is True
    assert sample(metrics, "immich_sidecar_discord_connected") == 1


@pytest.mark.parametrize("layout", ["gallery", "embeds"])
async def test_batch_is_split_and_every_message_limits_mentions(fake, bot, layout):
    assets = [make_asset(i) for i in range(12)]
    await photos_sink(bot, layout=layout).send(make_batch(assets, max_per_message=5))
    messages = fake.messages_in(fd.PHOTOS_CHANNEL)
    if layout == "embeds":
        assert [len(m.payload["embeds"]) for m in messages] == [5, 5, 2]
    else:
        assert [len(m.payload["components"][1]["items"]) for m in messages] == [5, 5, 2]
    assert [len(m.files) for m in messages] == [5, 5, 2]
    for message in messages:
        assert message.payload["allowed_mentions"]["parse"] == []
        assert "roles" not in message.payload["allowed_mentions"]


@pytest.mark.parametrize(("layout", "previews"), [("gallery", 10), ("embeds", 4)])
async def test_summary_is_one_message_with_its_previews(fake, bot, immich, layout, previews):
    assets = [make_asset(i) for i in range(30)]
    await photos_sink(bot, layout=layout).send(make_batch(assets, summary_over=20))
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert "Alice: 30 new photos" in json.dumps(message.payload, ensure_ascii=False)
    assert len(message.files) == previews
    assert len(immich.thumbnail_calls) == previews


async def test_resend_after_crash_is_deduplicated_by_nonce(fake, bot):
    batch = make_batch([make_asset(1), make_asset(2)])
    await photos_sink(bot).send(batch)
    await photos_sink(bot).send(batch)  # the dispatcher crashed before marking it sent
    assert len(fake.messages_in(fd.PHOTOS_CHANNEL)) == 1
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert len(posts) == 2


async def test_rate_limit_is_retried_by_discord_py_and_counted(fake, bot, metrics):
    fake.rate_limit("POST", rf"/channels/{fd.PHOTOS_CHANNEL}/messages", retry_after=0.05)
    await photos_sink(bot).send(make_batch([make_asset(1)]))
    assert len(fake.messages_in(fd.PHOTOS_CHANNEL)) == 1
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert len(posts) == 2
    assert sample(metrics, "immich_sidecar_discord_retries_total") == 1


async def test_only_requests_sent_again_count_as_discord_retries(fake, bot, metrics):
    messages = rf"/channels/{fd.PHOTOS_CHANNEL}/messages"
    # discord.py tries five times, then gives up: four retries, the fifth 429 is final
    fake.rate_limit("POST", messages, retry_after=0.01, times=5)
    with pytest.raises(TemporaryDeliveryError):
        await photos_sink(bot).send(make_batch([make_asset(1)]))
    assert sample(metrics, "immich_sidecar_discord_retries_total") == 4
    # a wait longer than max_ratelimit_timeout is handed back at once: no retry
    fake.rate_limit("POST", messages, retry_after=600)
    with pytest.raises(TemporaryDeliveryError):
        await photos_sink(bot).send(make_batch([make_asset(2)]))
    # a 429 without Discord's Via header (Cloudflare) is not retried either
    fake.fail("POST", messages, 429, body={"message": "banned", "retry_after": 0.01})
    with pytest.raises(TemporaryDeliveryError):
        await photos_sink(bot).send(make_batch([make_asset(3)]))
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith("/messages")]
    assert len(posts) == 7
    assert sample(metrics, "immich_sidecar_discord_retries_total") == 4
    assert fake.messages_in(fd.PHOTOS_CHANNEL) == []


async def test_missing_permission_is_permanent_and_other_target_still_works(fake, bot, metrics):
    fake.fail(
        "POST",
        rf"/channels/{fd.READ_ONLY_CHANNEL}/messages",
        403,
        body={"message": "Missing Permissions", "code": 50013},
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await photos_sink(bot, fd.READ_ONLY_CHANNEL, "news").send(make_batch([make_asset(1)]))
    assert caught.value.reason == "missing_permission"
    assert "Attach Files" in str(caught.value)
    await photos_sink(bot).send(make_batch([make_asset(2)]))
    assert len(fake.messages_in(fd.PHOTOS_CHANNEL)) == 1


async def test_unknown_channel_is_permanent(fake, bot):
    with pytest.raises(PermanentDeliveryError) as caught:
        await photos_sink(bot, 123456789012345678, "gone").send(make_batch([make_asset(1)]))
    assert caught.value.reason == "unknown_channel"
    assert "check channel_id" in str(caught.value)


async def test_server_error_is_temporary(fake, bot):
    fake.fail("POST", rf"/channels/{fd.PHOTOS_CHANNEL}/messages", 503, times=10)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await photos_sink(bot).send(make_batch([make_asset(1)]))
    assert caught.value.reason == "discord_server_error"


async def test_startup_reports_channel_problems(fake, immich, metrics):
    settings = make_settings(
        targets={
            "photos": ChannelTarget("photos", fd.PHOTOS_CHANNEL),
            "news": ChannelTarget("news", fd.READ_ONLY_CHANNEL),
            "gone": ChannelTarget("gone", 123456789012345678),
        }
    )
    bot, problems = await start_bot(fake, immich, metrics, settings)
    try:
        assert len(problems) == 2
        news, gone = sorted(problems, key=lambda p: "gone" in p)
        assert "'news'" in news
        assert "Send Messages" in news
        assert "Attach Files" in news
        assert "'gone'" in gone
        assert "does not exist" in gone
    finally:
        await bot.close()
    assert sample(metrics, "immich_sidecar_discord_connected") == 0


async def test_commands_are_synced_to_the_guild(fake, bot):
    group, save = fake.synced_commands[str(fd.GUILD_ID)]
    assert (save["name"], save["type"]) == ("Save to Immich", 3)  # a message command
    assert group["name"] == "immich"
    assert {o["name"] for o in group["options"]} == {"upload", "person", "status", "memories"}


async def test_bad_token_is_one_clear_line(fake, immich, metrics, caplog):
    caplog.set_level(logging.DEBUG)
    bot = SidecarBot(make_settings(), immich, metrics, fixed_status)
    async with bot:
        with pytest.raises(DiscordStartupError) as caught:
            await bot.launch(Secret("wrong-token"))
    message = str(caught.value)
    assert "\n" not in message
    assert "discord.token" in message
    assert "wrong-token" not in message
    assert "wrong-token" not in caplog.text


async def test_connected_gauge_follows_the_gateway(fake, bot, metrics):
    assert sample(metrics, "immich_sidecar_discord_connected") == 1
    await fake.drop_gateway(refuse_reconnect=True)
    await fake.wait_for(lambda: sample(metrics, "immich_sidecar_discord_connected") == 0)
    fake.gateway_open = True
    await fake.wait_for(lambda: fake.resumes == 1, timeout=10)
    await fake.wait_for(lambda: sample(metrics, "immich_sidecar_discord_connected") == 1)
