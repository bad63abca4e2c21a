"""The fake Discord's DM channels, error 50007 and message components, pinned with the real
discord.py client: what the member features (issue 19) rely on, as Discord does it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import discord
import pytest

from tests.fakes import fake_discord as fd


class Client(discord.Client):
    """A bare bot session; clicks and choices are recorded by the items below."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.none(), guild_ready_timeout=0.05)
        self.ready = asyncio.Event()
        self.seen: list[tuple[str, Any]] = []

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Knock)
        self.add_view(Menu(self))

    async def on_ready(self) -> None:
        self.ready.set()


class Knock(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"knock:(?P<n>\d+)"):
    def __init__(self, n: int) -> None:
        super().__init__(discord.ui.Button(label="Knock", custom_id=f"knock:{n}"))
        self.n = n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> Knock:
        return cls(int(match["n"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        client: Any = interaction.client
        client.seen.append(("knock", (self.n, interaction.user.id)))
        await interaction.response.edit_message(content=f"knocked {self.n}", view=None)


class Menu(discord.ui.View):
    def __init__(self, client: Client) -> None:
        super().__init__(timeout=None)
        self.client = client

    @discord.ui.select(
        custom_id="menu",
        options=[
            discord.SelectOption(label="A", value="a"),
            discord.SelectOption(label="B", value="b"),
        ],
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        self.client.seen.append(("menu", list(select.values)))
        await interaction.response.send_message("picked", ephemeral=True)


@pytest.fixture
async def client(fake: fd.FakeDiscord) -> AsyncIterator[Client]:
    bot = Client()
    await bot.login(fd.TOKEN)
    runner = asyncio.create_task(bot.connect(reconnect=False))
    await asyncio.wait_for(bot.ready.wait(), 10)
    yield bot
    await bot.close()
    runner.cancel()


async def test_a_dm_channel_is_made_once_per_user_then_takes_messages(fake, client) -> None:
    alice = fake.add_user("alice")
    first = await client.http.start_private_message(alice)
    again = await client.http.start_private_message(alice)
    assert first["id"] == again["id"] and first["type"] == 1
    assert [r["id"] for r in first["recipients"]] == [str(alice)]
    channel = await client.create_dm(discord.Object(alice))
    await channel.send("you are in a new photo")
    [dm] = fake.dms_to(alice)
    assert dm.payload["content"] == "you are in a new photo"
    assert fake.requests[-2].json == {"recipient_id": alice}  # what discord.py sends


async def test_an_unknown_user_has_no_dm_channel(fake, client) -> None:
    with pytest.raises(discord.NotFound):
        await client.create_dm(discord.Object(123456789012345678))


async def test_a_member_who_blocks_dms_answers_50007_and_gets_nothing(fake, client) -> None:
    closed = fake.add_user("bob", dms_closed=True)
    channel = await client.create_dm(discord.Object(closed))  # making the channel works
    with pytest.raises(discord.Forbidden) as caught:
        await channel.send("hello")
    assert caught.value.status == 403
    assert caught.value.code == 50007
    assert caught.value.text == "Cannot send messages to this user"
    assert fake.dms_to(closed) == [] and fake.dm_attempts(closed) == 1


async def test_a_button_click_reaches_the_dynamic_item_and_updates_the_message(
    fake, client
) -> None:
    channel: Any = client.get_channel(fd.PHOTOS_CHANNEL)
    view = discord.ui.View(timeout=None)
    view.add_item(Knock(7))
    sent = await channel.send("door", view=view)
    assert fake.custom_ids(sent.id) == ["knock:7"]
    clicker = fake.add_user("dave")
    token = await fake.click(sent.id, "knock:7", user_id=clicker)
    await fake.wait_for(lambda: fake.responses_for(token))
    assert client.seen == [("knock", (7, clicker))]
    [callback] = fake.responses_for(token)
    assert callback["payload"]["type"] == 7  # UPDATE_MESSAGE
    assert fake.message_json[sent.id]["content"] == "knocked 7"
    assert fake.message_json[sent.id]["components"] == []


async def test_a_select_menu_choice_carries_its_values(fake, client) -> None:
    channel: Any = client.get_channel(fd.PHOTOS_CHANNEL)
    sent = await channel.send("pick one", view=Menu(client))
    token = await fake.click(sent.id, "menu", values=["b"])
    await fake.wait_for(lambda: fake.responses_for(token))
    assert ("menu", ["b"]) in client.seen
    [callback] = fake.responses_for(token)
    assert callback["payload"]["type"] == 4
    assert callback["payload"]["data"]["flags"] & 64  # ephemeral
