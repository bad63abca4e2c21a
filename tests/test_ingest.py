"""Drag-and-drop ingest and "Save to Immich" with the real discord.py client against the fake
Discord, an Immich edge that dedupes by content, and a real state file."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from sidecar.config.model import IngestChannel, Secret, Settings, UploadCommand
from sidecar.discord.bot import SidecarBot
from sidecar.discord.intents import MESSAGE_CONTENT_OFF
from sidecar.discord.no_echo import without_echo
from sidecar.discord.uploads.ingest import ALL_IN, SOME_REFUSED
from sidecar.engine.store.database import Store
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import Batch, Delivery, PostRef
from sidecar.targets.discord.channel import ChannelTarget
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import JPEG, FakeImmich, fixed_status, make_settings
from tests.test_discord_commands import final_answer, text_of
from tests.test_render import make_asset

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
TEXT = b"shopping list: milk, eggs\n"
UPLOADERS = (fd.UPLOADER_ROLE,)


def ingest_settings(**channel: object) -> Settings:
    settings = make_settings(upload=UploadCommand(allowed_roles=("uploaders",)))
    config = IngestChannel(
        fd.UPLOADS_CHANNEL,
        allowed_roles=("uploaders",),
        **channel,  # type: ignore[arg-type]
    )
    return replace(settings, discord=replace(settings.discord, ingest=(config,)))


class Running:
    def __init__(self, fake: fd.FakeDiscord, immich: FakeImmich, store: Store) -> None:
        self.fake, self.immich, self.store = fake, immich, store
        self.bot: SidecarBot | None = None

    async def start(self, settings: Settings | None = None) -> SidecarBot:
        bot = SidecarBot(
            settings or ingest_settings(),
            cast(Any, self.immich),  # the bot test's Immich edge, typed loosely
            Metrics(),
            fixed_status,
            guild_ready_timeout=0.05,
            ingest_store=self.store,
        )
        await bot.__aenter__()
        await bot.launch(Secret(fd.TOKEN), ready_timeout=10)
        self.bot = bot
        if bot._catch_up is not None:
            await bot._catch_up
        return bot

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.close()
            self.bot = None


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "state.db")


@pytest.fixture
async def world(fake, store) -> AsyncIterator[Running]:
    running = Running(fake, FakeImmich(), store)
    yield running
    await running.stop()
    store.close()


def answer_text(fake: fd.FakeDiscord, token: str) -> str:
    answer = final_answer(fake, token)
    assert answer is not None
    return text_of(answer)


async def answered(fake: fd.FakeDiscord, message: dict[str, object]) -> str:
    message_id = int(str(message["id"]))
    await fake.wait_for(
        lambda: bool(fake.replies_to(message_id)) and bool(fake.reactions_on(message_id))
    )
    [reply] = fake.replies_to(message_id)
    return str(reply.payload["content"])


async def test_two_images_and_a_text_file(world):
    fake = world.fake
    await world.start()
    message = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        "from the party",
        files=(
            ("a.jpg", JPEG, "image/jpeg"),
            ("b.png", PNG, "image/png"),
            ("list.txt", TEXT, "text/plain"),
        ),
        roles=UPLOADERS,
    )
    text = await answered(fake, message)
    assert [u[0] for u in world.immich.uploads] == ["a.jpg", "b.png"]
    assert world.immich.descriptions == {
        "new-1": "Uploaded by carol in #uploads",
        "new-2": "Uploaded by carol in #uploads",
    }
    assert fake.reactions_on(int(message["id"])) == [SOME_REFUSED]
    assert text.startswith("Into Immich: 2 files uploaded, 1 file refused.")
    assert "`a.jpg`: uploaded, <https://photos.example.org/photos/new-1>" in text
    assert "`list.txt`: refused, not a photo or video Immich can take." in text
    [reply] = fake.replies_to(int(message["id"]))
    assert reply.payload["allowed_mentions"]["parse"] == []
    assert world.store.ingested_from("new-1") == fd.UPLOADS_CHANNEL


async def test_all_in_reacts_with_a_check_mark_and_names_duplicates(world):
    fake = world.fake
    world.immich.known_checksums[JPEG] = "old-1"
    await world.start()
    message = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        files=(("a.jpg", JPEG, "image/jpeg"), ("b.png", PNG, "image/png")),
        roles=UPLOADERS,
    )
    text = await answered(fake, message)
    assert fake.reactions_on(int(message["id"])) == [ALL_IN]
    assert "`a.jpg`: already in Immich, <https://photos.example.org/photos/old-1>" in text
    assert "old-1" not in world.immich.descriptions  # someone's photo keeps its description


async def test_a_message_seen_again_is_not_uploaded_twice(world):
    fake = world.fake
    await world.start()
    message = await fake.post_message(
        fd.UPLOADS_CHANNEL, files=(("a.jpg", JPEG, "image/jpeg"),), roles=UPLOADERS
    )
    await answered(fake, message)
    await fake.dispatch(
        "MESSAGE_CREATE", {**message, "member": fake._member_json(fd.USER_ID, with_user=False)}
    )
    await world.stop()
    await world.start()  # a restart reads the history again
    assert len(world.immich.uploads) == 1
    assert len(fake.replies_to(int(message["id"]))) == 1


async def test_messages_posted_while_away_are_picked_up_in_order(world):
    fake = world.fake
    await world.start()
    await world.stop()
    first = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        files=(("one.jpg", JPEG, "image/jpeg"),),
        roles=UPLOADERS,
        dispatch=False,
    )
    await fake.post_message(fd.UPLOADS_CHANNEL, "just chatting", roles=UPLOADERS, dispatch=False)
    second = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        files=(("two.png", PNG, "image/png"),),
        roles=UPLOADERS,
        dispatch=False,
    )
    await world.start()
    await answered(fake, first)
    await answered(fake, second)
    assert [u[0] for u in world.immich.uploads] == ["one.jpg", "two.png"]
    [query] = fake.history_requests[-1:]
    assert query["limit"] == "100" and int(query["after"]) < int(first["id"])


async def test_a_channel_watched_for_the_first_time_does_not_ingest_its_past(world):
    fake = world.fake
    old = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        files=(("old.jpg", JPEG, "image/jpeg"),),
        roles=UPLOADERS,
        dispatch=False,
    )
    await world.start()
    await world.stop()
    await world.start()
    assert world.immich.uploads == []
    assert fake.replies_to(int(old["id"])) == []


async def test_members_without_an_allowed_role_are_told_and_nothing_uploads(world):
    fake = world.fake
    await world.start()
    message = await fake.post_message(
        fd.UPLOADS_CHANNEL, files=(("a.jpg", JPEG, "image/jpeg"),), roles=(fd.MEMBER_ROLE,)
    )
    text = await answered(fake, message)
    assert world.immich.uploads == []
    assert text == "Not uploaded to Immich: you do not have a role that may upload to Immich."
    assert fake.reactions_on(int(message["id"])) == [SOME_REFUSED]


async def test_other_channels_and_the_bots_own_messages_are_ignored(world):
    fake = world.fake
    await world.start()
    elsewhere = await fake.post_message(
        fd.PHOTOS_CHANNEL, files=(("a.jpg", JPEG, "image/jpeg"),), roles=UPLOADERS
    )
    own = await fake.post_message(
        fd.UPLOADS_CHANNEL, files=(("b.jpg", JPEG, "image/jpeg"),), author=fd.BOT_ID
    )
    probe = await fake.post_message(
        fd.UPLOADS_CHANNEL, files=(("c.png", PNG, "image/png"),), roles=UPLOADERS
    )
    await answered(fake, probe)  # handled in order: the earlier ones are done by now
    assert [u[0] for u in world.immich.uploads] == ["c.png"]
    assert fake.replies_to(int(elsewhere["id"])) == fake.replies_to(int(own["id"])) == []


async def test_missing_message_content_intent_is_one_line_and_the_bot_works(world, caplog):
    fake = world.fake
    fake.message_content_allowed = False
    caplog.set_level(logging.INFO)
    bot = await world.start()
    assert bot.is_ready()
    said = [r.getMessage() for r in caplog.records if "Message Content" in r.getMessage()]
    assert said == [MESSAGE_CONTENT_OFF]
    assert not bot.intents.message_content
    token = await fake.interact([{"type": 1, "name": "status", "options": []}])
    await fake.wait_for(lambda: final_answer(fake, token) is not None)
    assert "Immich: reachable" in answer_text(fake, token)


async def test_save_to_immich_uploads_the_message_s_image(world):
    fake = world.fake
    await world.start(make_settings(upload=UploadCommand(allowed_roles=("uploaders",))))
    [command] = [c for c in fake.synced_commands[str(fd.GUILD_ID)] if c.get("type") == 3]
    assert command["name"] == "Save to Immich"
    message = await fake.post_message(
        fd.PHOTOS_CHANNEL, files=(("beach.jpg", JPEG, "image/jpeg"),), dispatch=False
    )
    token = await fake.message_command("Save to Immich", message, roles=UPLOADERS)
    await fake.wait_for(lambda: final_answer(fake, token) is not None)
    text = answer_text(fake, token)
    assert [u[0] for u in world.immich.uploads] == ["beach.jpg"]
    assert world.immich.descriptions == {"new-1": "Uploaded by carol in #photos"}
    assert "`beach.jpg`: uploaded" in text
    refused = await fake.message_command("Save to Immich", message, roles=(fd.MEMBER_ROLE,))
    await fake.wait_for(lambda: final_answer(fake, refused) is not None)
    assert "Refused" in answer_text(fake, refused)
    assert len(world.immich.uploads) == 1


# ---------------------------------------------------------------------------- no echo


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, ...]] = []

    async def send(self, batch: Batch) -> None:
        self.sent.append(tuple(d.asset.id for d in batch.deliveries))

    async def close(self) -> None:
        pass


async def test_ingested_assets_are_not_announced_back_into_their_channel(store):
    settings = replace(
        ingest_settings(),
        targets={
            "uploads": ChannelTarget("uploads", fd.UPLOADS_CHANNEL),
            "photos": ChannelTarget("photos", fd.PHOTOS_CHANNEL),
        },
    )
    store.ingest_remember_asset("came-in", fd.UPLOADS_CHANNEL, 1)
    uploads, photos = Recorder(), Recorder()
    sinks = without_echo({"uploads": uploads, "photos": photos}, settings, store.ingested_from)

    def batch(target: str, *ids: str, post: PostRef | None = None) -> Batch:
        deliveries = tuple(
            Delivery(i, "r", target, replace(make_asset(i), id=asset), post=post)
            for i, asset in enumerate(ids)
        )
        return Batch("r", target, deliveries)

    await sinks["uploads"].send(batch("uploads", "came-in", "other"))
    await sinks["uploads"].send(batch("uploads", "came-in"))
    await sinks["photos"].send(batch("photos", "came-in"))
    memories = PostRef("m", "memories", "2026-12-05", "2020", "On this day", None)
    await sinks["uploads"].send(batch("uploads", "came-in", post=memories))
    assert uploads.sent == [("other",), ("came-in",)]
    assert photos.sent == [("came-in",)]


# ---------------------------------------------------------------------------- state


def test_a_claim_left_open_is_resumed_before_it(store):
    now = datetime.now(UTC)
    assert store.ingest_resume_after(5) is None
    store.ingest_start_at(5, 100)
    store.ingest_start_at(5, 999)  # only the first start counts
    assert store.ingest_resume_after(5) == 100
    assert store.ingest_claim(5, 120, now)
    store.ingest_seen(5, 130)
    assert store.ingest_resume_after(5) == 119  # 120 is unfinished
    assert store.ingest_claim(5, 120, now)  # still open: handled again
    store.ingest_done(5, 120, ["asset-1"])
    assert not store.ingest_claim(5, 120, now)
    assert store.ingest_resume_after(5) == 130
    assert store.ingested_from("asset-1") == 5


async def test_cut_short_after_the_answer_the_description_still_follows(world):
    """The process died after Immich answered the upload (the asset is recorded for the
    message) but before the description: handled again, the duplicate is known as this
    message's own and gets its description; a photo that was in Immich before never does."""
    fake, store = world.fake, world.store
    await world.start()
    await world.stop()
    message = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        files=(("a.jpg", JPEG, "image/jpeg"), ("b.png", PNG, "image/png")),
        roles=UPLOADERS,
        dispatch=False,
    )
    world.immich.known_checksums[JPEG] = "new-a"  # Immich took a.jpg before the crash
    world.immich.known_checksums[PNG] = "old-b"  # b.png was in Immich all along
    assert store.ingest_claim(fd.UPLOADS_CHANNEL, int(message["id"]), datetime.now(UTC))
    store.ingest_remember_asset("new-a", fd.UPLOADS_CHANNEL, int(message["id"]))
    await world.start()
    text = await answered(fake, message)
    assert world.immich.descriptions == {"new-a": "Uploaded by carol in #uploads"}
    assert "`a.jpg`: already in Immich" in text and "`b.png`: already in Immich" in text


async def test_uploads_go_into_the_channel_s_album(fake, store):
    album = "0b6a4f7e-5d2c-4e8a-9a51-3f2d8c1b7e40"
    world = Running(fake, FakeImmich(), store)
    await world.start(ingest_settings(album=album))
    try:
        message = await fake.post_message(
            fd.UPLOADS_CHANNEL, files=(("a.jpg", JPEG, "image/jpeg"),), roles=UPLOADERS
        )
        text = await answered(fake, message)
    finally:
        await world.stop()
    assert world.immich.albums == {album: ["new-1"]}
    assert text.startswith(
        f"Into the Immich album {album} <https://photos.example.org/albums/{album}>: "
        "1 file uploaded."
    )
