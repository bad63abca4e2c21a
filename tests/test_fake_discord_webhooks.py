"""The fake Discord's channel webhooks and channel permissions behave like Discord's (the doctor
relies on them): GET on a webhook URL describes it without posting, a wrong token is 401
Invalid Webhook Token, a deleted or unknown webhook 404 Unknown Webhook with Discord's body."""

from __future__ import annotations

import discord
import httpx

from sidecar.ops.metrics import Metrics
from sidecar.targets.discord.channel import ChannelTarget
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import FakeImmich, make_settings, start_bot


async def test_get_on_a_webhook_url_returns_its_channel_and_posts_nothing(fake):
    url = fake.add_webhook(fd.PHOTOS_CHANNEL, name="Photos")
    async with httpx.AsyncClient() as http:
        answer = await http.get(url)
        assert answer.status_code == 200
        body = answer.json()
        assert (body["channel_id"], body["guild_id"], body["name"], body["type"]) == (
            str(fd.PHOTOS_CHANNEL),
            str(fd.GUILD_ID),
            "Photos",
            1,
        )
        assert fake.messages == []
        posted = await http.post(url, params={"wait": "true"}, json={"content": "hi"})
    assert posted.status_code == 200
    assert [m.payload["content"] for m in fake.messages_in(fd.PHOTOS_CHANNEL)] == ["hi"]


async def test_wrong_token_deleted_and_unknown_webhooks_answer_like_discord(fake):
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    webhook_id = url.split("/")[-2]
    async with httpx.AsyncClient() as http:
        wrong = await http.get(f"{fake.base_url}/api/v10/webhooks/{webhook_id}/not-the-token")
        unknown = await http.get(f"{fake.base_url}/api/v10/webhooks/123/some-token")
        fake.delete_webhook(url)
        deleted_get = await http.get(url)
        deleted_post = await http.post(url, json={"content": "hi"})
    assert (wrong.status_code, wrong.json()) == (
        401,
        {"message": "Invalid Webhook Token", "code": 50027},
    )
    for answer in (unknown, deleted_get, deleted_post):
        assert (answer.status_code, answer.json()) == (
            404,
            {"message": "Unknown Webhook", "code": 10015},
        )
    assert fake.messages == []


async def test_a_channel_added_with_a_deny_overwrite_takes_that_permission_from_the_bot(fake):
    no_files = fake.add_channel("no-files", deny=fd.ATTACH_FILES)
    settings = make_settings(
        {
            "photos": ChannelTarget("photos", fd.PHOTOS_CHANNEL),
            "nofiles": ChannelTarget("nofiles", no_files),
        }
    )
    bot, problems = await start_bot(fake, FakeImmich(), Metrics(), settings)
    try:
        channel = bot.get_channel(no_files)
        assert channel is not None
        assert isinstance(channel, discord.TextChannel)
        permissions = channel.permissions_for(channel.guild.me)
        assert (permissions.send_messages, permissions.attach_files) == (True, False)
    finally:
        await bot.close()
    assert [p.split(":")[0] for p in problems] == [f"target 'nofiles' (channel {no_files})"]
