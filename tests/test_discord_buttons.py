"""The ♥ Favourite button through the real bot and the fake Discord, against the fake Immich:
the polite refusals (no role, key without asset.update, another user's photo) and the success."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sidecar.config.model import MembersSettings, Secret
from sidecar.discord.bot import SidecarBot
from sidecar.immich.client import ImmichClient
from sidecar.ops.metrics import Metrics
from sidecar.targets.discord.buttons import post_view
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.test_discord_bot import make_settings, start_bot

EVERYTHING_BUT_ASSET_UPDATE = ["asset.read", "asset.view", "person.read"]


async def running_bot(fake: fd.FakeDiscord, client: ImmichClient) -> SidecarBot:
    settings = make_settings()
    settings = replace(
        settings,
        discord=replace(settings.discord, members=MembersSettings(favourite_roles=("family",))),
    )
    bot, _ = await start_bot(fake, client, Metrics(), settings)
    return bot


async def click_heart(fake: fd.FakeDiscord, bot: SidecarBot, asset_id: str, **who: Any) -> str:
    channel: Any = bot.get_channel(fd.PHOTOS_CHANNEL)
    view = post_view(f"https://photos.example.org/photos/{asset_id}", [asset_id], favourite=True)
    message = await channel.send("a photo", view=view)
    [heart] = fake.custom_ids(message.id)
    token = await fake.click(message.id, heart, **who)
    await fake.wait_for(lambda: fake.responses_for(token))
    [answer] = fake.responses_for(token)
    assert answer["payload"]["data"]["flags"] & 64  # only the clicker sees it
    return str(answer["payload"]["data"]["content"])


@pytest.fixture
async def immich() -> AsyncIterator[FakeImmich]:
    async with FakeImmich() as server:
        yield server


async def test_favourite_marks_the_owners_photo_and_refuses_the_rest(fake, immich) -> None:
    own = immich.add_asset()
    grandpa = immich.add_user("Grandpa")
    theirs = immich.add_asset(owner=grandpa)
    album = immich.add_album("Shared", owner=grandpa, shared_with=[immich.key_user_id])
    immich.add_to_album(album, [theirs])
    async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
        bot = await running_bot(fake, client)
        try:
            nobody = await click_heart(fake, bot, own)
            family = {"roles": (fd.MEMBER_ROLE,)}
            foreign = await click_heart(fake, bot, theirs, **family)
            done = await click_heart(fake, bot, own, **family)
        finally:
            await bot.close()
    assert nobody == "Sorry, you do not have a role that may mark favourites."
    assert "only the owner of a photo" in foreign
    assert not immich.is_favourite(theirs)
    assert done == "♥ Marked as a favourite in Immich."
    assert immich.is_favourite(own)


async def test_a_key_without_asset_update_is_named(fake) -> None:
    async with FakeImmich(permissions=EVERYTHING_BUT_ASSET_UPDATE) as immich:
        own = immich.add_asset()
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            bot = await running_bot(fake, client)
            try:
                said = await click_heart(fake, bot, own, roles=(fd.MEMBER_ROLE,))
            finally:
                await bot.close()
    assert said == (
        "Sorry, the Favourite button is off: the Immich API key lacks asset.update; add it to "
        "the key (Immich: Account settings > API keys)."
    )
    assert not immich.is_favourite(own)
