"""Spotted DMs and member mentions through the real bot against the fake Discord: one member's
passing failure is retried for that member only, the others are never DMed twice; a post
mentions per message exactly the linked members of the people in it (pure rendering)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.discord.bot import SidecarBot
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.store.database import Store
from sidecar.immich.models import PersonRef
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import TemporaryDeliveryError
from sidecar.targets.discord.dm import DmSink, DmTarget
from sidecar.targets.discord.render.batch import render_batch
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import FakeImmich, start_bot
from tests.test_render import EXTERNAL, make_asset, make_batch, pictures

CAROL = PersonRef("p-carol", "Carol")
ERIN = PersonRef("p-erin", "Erin")
DAVE = PersonRef("p-dave", "Dave")


@pytest.fixture
async def bot(fake: fd.FakeDiscord) -> AsyncIterator[SidecarBot]:
    bot, _ = await start_bot(fake, FakeImmich(), Metrics())
    yield bot
    await bot.close()


def directory(carol: int, erin: int) -> MemberDirectory:
    members = MemberDirectory(Store.open(Path(":memory:")))
    members.configure(
        [Link("p-carol", "Carol", carol, "config"), Link("p-erin", "Erin", erin, "config")], []
    )
    return members


async def test_a_retry_dms_only_the_member_whose_dm_failed(fake, bot) -> None:
    carol, erin = fake.add_user("carol"), fake.add_user("erin")
    members = directory(carol, erin)
    sink = DmSink(bot, DmTarget("spotted"), FakeImmich(), EXTERNAL, members)
    await sink.send(make_batch([make_asset(1, people=(CAROL,))]))  # Carol's DM channel exists now
    carol_dm = fake.dm_channel_of(carol)
    # A long rate limit: discord.py gives up at once, the sink says "later".
    fake.rate_limit("POST", f"/channels/{carol_dm}/messages", retry_after=120)
    batch = make_batch([make_asset(2, people=(CAROL, ERIN, DAVE))])
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink.send(batch)
    assert caught.value.retry_after == 120
    assert len(fake.dms_to(erin)) == 1 and len(fake.dms_to(carol)) == 1
    await sink.send(batch)  # the dispatcher's retry
    assert len(fake.dms_to(erin)) == 1  # not twice
    assert len(fake.dms_to(carol)) == 2
    [erin_dm] = fake.dms_to(erin)
    _, gallery, row = erin_dm.payload["components"]  # a gallery, with no ♥ in a DM
    assert gallery["items"][0]["media"]["url"] == "attachment://asset-2.jpg"
    assert [b["url"] for b in row["components"]] == [f"{EXTERNAL}/photos/asset-2"]
    assert "custom_id" not in json.dumps(erin_dm.payload)
    assert erin_dm.payload["allowed_mentions"]["parse"] == []
    assert not erin_dm.payload["allowed_mentions"].get("users")


async def test_no_linked_watched_person_means_no_dm_and_no_failure(fake, bot) -> None:
    carol, erin = fake.add_user("carol"), fake.add_user("erin")
    sink = DmSink(bot, DmTarget("spotted"), FakeImmich(), EXTERNAL, directory(carol, erin))
    await sink.send(make_batch([make_asset(3, people=(DAVE,))]))
    assert fake.dm_channels == {}


def test_each_message_mentions_the_linked_members_of_its_own_people() -> None:
    first, second = make_asset(1, people=(CAROL, DAVE)), make_asset(2, people=(ERIN,))
    batch = replace(
        make_batch([first, second], roles=(5,), max_per_message=1),
        member_mentions=(("p-carol", 11), ("p-erin", 12)),
    )
    one, two = render_batch(batch, EXTERNAL, pictures([first, second]))
    assert one.content.startswith("<@&5> <@11> ") and "<@12>" not in one.content
    assert one.allowed_mentions == {
        "parse": [],
        "roles": [5],
        "users": [11],
        "replied_user": False,
    }
    assert two.content.startswith("<@&5> <@12> ") and two.allowed_mentions["users"] == [12]
    summary = replace(batch, batching=replace(batch.batching, summary_over=1))
    [whole] = render_batch(summary, EXTERNAL, pictures([first, second]))
    assert whole.allowed_mentions["users"] == [11, 12]


def test_without_mention_members_nobody_is_pinged() -> None:
    [message] = render_batch(make_batch([make_asset(1, people=(CAROL,))]), EXTERNAL, {})
    assert message.allowed_mentions["users"] == [] and "<@" not in message.content
