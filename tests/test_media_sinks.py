"""The Discord sinks with galleries, videos and message sizes, against the fake Discord and the
fake Immich on 127.0.0.1 through the real clients (httpx for the webhook, discord.py for the
bot): videos attached or not, 413 stepped down once per step and counted, a webhook that
refuses components answered with one message of embeds (issue 26)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from sidecar.config.model import Secret
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Asset
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import Batch, Delivery, PermanentDeliveryError
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.targets.discord.webhook import WebhookSink, WebhookTarget
from sidecar.targets.presentation import Presentation, VideoOptions
from tests.fakes import discord_components as rules
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fakes.fake_shared_links import video_bytes
from tests.test_discord_bot import start_bot

MIB = 1024 * 1024
EXTERNAL = "https://photos.example.test"


@pytest.fixture
async def immich() -> AsyncIterator[FakeImmich]:
    async with FakeImmich() as server:
        yield server


@pytest.fixture
async def client(immich: FakeImmich) -> AsyncIterator[ImmichClient]:
    async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as made:
        yield made


async def batch_of(client: ImmichClient, ids: list[str], rule: str = "family") -> Batch:
    assets: list[Asset] = [await client.asset(i) for i in ids]
    return Batch(
        rule, "family", tuple(Delivery(n + 1, rule, "family", a) for n, a in enumerate(assets))
    )


def webhook_sink(
    url: str, client: ImmichClient, metrics: Metrics, **presentation: object
) -> WebhookSink:
    target = WebhookTarget("family", Secret(url), presentation=Presentation(**presentation))  # type: ignore[arg-type]
    return WebhookSink(target, client, EXTERNAL, metrics)


def posts_to(fake: fd.FakeDiscord, path: str) -> list[fd.RecordedRequest]:
    return [r for r in fake.requests if r.method == "POST" and r.path == path]


def too_large(metrics: Metrics) -> float:
    value = metrics.registry.get_sample_value(
        "immich_sidecar_discord_too_large_total", {"target": "family"}
    )
    return value or 0.0


async def test_a_small_video_is_attached_as_mp4_and_a_large_one_says_why(fake, immich, client):
    small = immich.add_asset(type="VIDEO", video_size=3 * MIB)
    large = immich.add_asset(type="VIDEO", video_size=30 * MIB)
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    sink = webhook_sink(url, client, Metrics())
    await sink.send(await batch_of(client, [small, large]))
    await sink.close()
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    types = message.file_types()
    assert types == {f"{small}.mp4": "video/mp4", f"{large}.jpg": "image/jpeg"}
    video = next(data for name, data in message.files.values() if name == f"{small}.mp4")
    assert video == video_bytes(small, 3 * MIB)
    assert message.shown == (f"{small}.mp4", f"{large}.jpg")
    text = message.payload["components"][0]["content"]
    assert "too large to attach: 30 MB" in text
    assert f"{EXTERNAL}/photos/{large}" in text
    # the 30 MB video was never downloaded: its answer was given up after the headers
    played = immich.api_requests("GET", f"/api/assets/{large}/video/playback")
    assert len(played) == 1


async def test_video_attach_false_sends_previews_only(fake, immich, client):
    clip = immich.add_asset(type="VIDEO", video_size=MIB)
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    sink = webhook_sink(url, client, Metrics(), video=VideoOptions(attach=False))
    await sink.send(await batch_of(client, [clip]))
    await sink.close()
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.file_names == [f"{clip}.jpg"]
    assert immich.api_requests("GET", f"/api/assets/{clip}/video/playback") == []


async def test_messages_over_ten_mib_are_split_and_each_fits(fake, immich, client):
    """Three 4 MiB videos (12 MiB) and two 3 MiB photos: no message carries more than Discord's
    10 MiB, nothing is refused, every delivery is in exactly one message."""
    ids = [immich.add_asset(type="VIDEO", video_size=4 * MIB) for _ in range(3)]
    ids += [immich.add_asset(preview_size=3 * MIB) for _ in range(2)]
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    sink = webhook_sink(url, client, Metrics())
    await sink.send(await batch_of(client, ids))
    await sink.close()
    messages = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert fake.refusals == []
    assert [m.size <= rules.UPLOAD_LIMIT for m in messages] == [True] * len(messages)
    assert len(messages) == 2
    shown = [name.split(".")[0] for m in messages for name in m.shown]
    assert shown == ids


async def test_a_413_steps_down_once_to_smaller_pictures_and_is_counted(fake, immich, client):
    ids = [immich.add_asset(preview_size=500_000) for _ in range(3)]
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    path = "/" + url.split("/api/v10/")[1]
    fake.fail("POST", path, 413, body={"message": "Request entity too large", "code": 40005})
    metrics = Metrics()
    sink = webhook_sink(url, client, metrics)
    await sink.send(await batch_of(client, ids))
    await sink.close()
    first, second = posts_to(fake, path)
    assert sum(len(d) for _, d in second.files.values()) < sum(
        len(d) for _, d in first.files.values()
    )
    assert [name for name, _ in second.files.values()] == [f"{i}.webp" for i in ids]
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert len(message.shown) == 3
    assert too_large(metrics) == 1


async def test_a_413_that_persists_is_never_retried_unchanged(fake, immich, client):
    clip = immich.add_asset(type="VIDEO", video_size=2 * MIB)
    photo = immich.add_asset()
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    path = "/" + url.split("/api/v10/")[1]
    fake.upload_limit = 10  # a server that takes (almost) nothing
    metrics = Metrics()
    sink = webhook_sink(url, client, metrics)
    with pytest.raises(PermanentDeliveryError) as caught:
        await sink.send(await batch_of(client, [clip, photo]))
    await sink.close()
    assert caught.value.reason == "too_large"
    attempts = posts_to(fake, path)
    assert len(attempts) == 3  # as planned, smaller pictures, no video: then it gives up
    bodies = [json.dumps(a.json, sort_keys=True) + repr(sorted(a.files)) for a in attempts]
    files = [sorted(name for name, _ in a.files.values()) for a in attempts]
    assert len(set(zip(bodies, map(tuple, files), strict=True))) == 3
    assert files[2] == sorted([f"{clip}.webp", f"{photo}.webp"])
    assert too_large(metrics) == 3


async def test_a_webhook_that_refuses_components_gets_one_message_of_embeds(fake, immich, client):
    ids = [immich.add_asset() for _ in range(5)]
    url = fake.add_webhook(fd.PHOTOS_CHANNEL, components=False)
    path = "/" + url.split("/api/v10/")[1]
    sink = webhook_sink(url, client, Metrics())
    await sink.send(await batch_of(client, ids))
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert "components" not in message.payload
    embeds = message.payload["embeds"]
    assert [e["image"]["url"] for e in embeds] == [f"attachment://{i}.jpg" for i in ids]
    assert len({e["url"] for e in embeds[:4]}) == 1 and embeds[4]["url"] != embeds[0]["url"]
    assert len(posts_to(fake, path)) == 2  # the gallery refused, then the embeds
    await sink.send(await batch_of(client, [immich.add_asset()]))
    await sink.close()
    assert len(posts_to(fake, path)) == 3  # from then on straight to embeds


async def test_the_bot_sends_a_gallery_with_a_video_that_plays(fake, immich, client):
    clip = immich.add_asset(type="VIDEO", video_size=MIB, created_at=datetime.now(UTC))
    photo = immich.add_asset()
    bot, _ = await start_bot(fake, client, Metrics())
    try:
        sink = bot.sink_for(ChannelTarget("family", fd.PHOTOS_CHANNEL))
        await sink.send(await batch_of(client, [clip, photo]))
    finally:
        await bot.close()
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.payload["flags"] & rules.IS_COMPONENTS_V2
    assert message.file_types() == {f"{clip}.mp4": "video/mp4", f"{photo}.jpg": "image/jpeg"}
    assert message.shown == (f"{clip}.mp4", f"{photo}.jpg")


async def test_a_summary_shows_previews_and_fetches_no_video(fake, immich, client):
    ids = [immich.add_asset(type="VIDEO", video_size=MIB) for _ in range(21)]
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    sink = webhook_sink(url, client, Metrics())
    await sink.send(await batch_of(client, ids))  # over summary_over (20): one summary
    await sink.close()
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert len(message.shown) == 10 and all(n.endswith(".jpg") for n in message.shown)
    assert [r for r in immich.requests if r.path.endswith("/video/playback")] == []


async def test_a_video_over_the_limit_is_its_size_not_a_failure(immich):
    """The client stops at the headers of a video over the limit: its size, no failure in the
    metrics (Immich answered; the sidecar asked for less)."""
    from sidecar.immich.models import VideoFile, VideoTooLarge

    clip = immich.add_asset(type="VIDEO", video_size=3 * MIB)
    metrics = Metrics()
    async with ImmichClient(immich.url, Secret(immich.api_key), metrics) as client:
        small = await client.video_playback(clip, 4 * MIB)
        big = await client.video_playback(clip, MIB)
    assert isinstance(small, VideoFile) and len(small.data) == 3 * MIB
    assert small.content_type == "video/mp4"
    assert big == VideoTooLarge(3 * MIB, MIB)
    endpoint = "GET /api/assets/{id}/video/playback"
    assert (
        metrics.registry.get_sample_value(
            "immich_sidecar_immich_requests_total", {"endpoint": endpoint, "status": "200"}
        )
        == 2
    )
    failures = [
        s
        for m in metrics.registry.collect()
        for s in m.samples
        if m.name == "immich_sidecar_immich_request_failures" and s.value
    ]
    assert failures == []
