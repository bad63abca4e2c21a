"""The fake Discord's message events, history, reactions and members behave as Discord's do,
pinned with the real discord.py client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import discord
import pytest

from tests.fakes import fake_discord as fd

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(64))


class Listener(discord.Client):
    def __init__(self, *, content: bool, messages: bool = True) -> None:
        intents = discord.Intents.none()
        intents.guilds = True
        intents.guild_messages = messages
        intents.message_content = content
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.seen: list[discord.Message] = []
        self.ready = asyncio.Event()

    async def on_ready(self) -> None:
        self.ready.set()

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)


async def connected(client: Listener) -> asyncio.Task[None]:
    await client.login(fd.TOKEN)
    runner = asyncio.create_task(client.connect(reconnect=True))
    await asyncio.wait_for(client.ready.wait(), 10)
    return runner


@pytest.fixture
async def clients() -> AsyncIterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for client in made:
        await client.close()


async def test_message_events_carry_content_only_with_the_intent(fake, clients):
    reader, blind, deaf = (
        Listener(content=True),
        Listener(content=False),
        Listener(content=False, messages=False),
    )
    clients += [reader, blind, deaf]
    for client in clients:
        await connected(client)
    posted = await fake.post_message(
        fd.UPLOADS_CHANNEL,
        "look",
        files=(("a.jpg", JPEG, "image/jpeg"),),
        roles=(fd.UPLOADER_ROLE,),
    )
    await fake.wait_for(lambda: reader.seen and blind.seen)
    [full], [empty] = reader.seen, blind.seen
    assert full.id == empty.id == int(posted["id"])
    assert full.content == "look" and [a.filename for a in full.attachments] == ["a.jpg"]
    assert await full.attachments[0].read() == JPEG  # served by the fake's loopback CDN
    assert empty.content == "" and empty.attachments == []
    assert isinstance(full.author, discord.Member)  # gateway messages carry the member
    assert [r.id for r in full.author.roles][1:] == [fd.UPLOADER_ROLE]
    await asyncio.sleep(0.1)
    assert deaf.seen == []  # no GUILD_MESSAGES intent, no message events


async def test_asking_for_a_privileged_intent_not_switched_on_closes_with_4014(fake, clients):
    fake.message_content_allowed = False
    client = Listener(content=True)
    clients.append(client)
    await client.login(fd.TOKEN)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        await asyncio.wait_for(client.connect(reconnect=True), 10)
    polite = Listener(content=False)
    clients.append(polite)
    await connected(polite)  # the same application without the intent connects


async def test_history_follows_discord_s_order_and_limits(fake, clients):
    client = Listener(content=True)
    clients.append(client)
    await connected(client)
    ids = [
        int((await fake.post_message(fd.UPLOADS_CHANNEL, f"m{n}", dispatch=False))["id"])
        for n in range(5)
    ]
    http = client.http
    after = await http.logs_from(fd.UPLOADS_CHANNEL, 2, after=ids[0])
    assert [int(m["id"]) for m in after] == [ids[2], ids[1]]  # just after, newest first
    newest = await http.logs_from(fd.UPLOADS_CHANNEL, 2)
    assert [int(m["id"]) for m in newest] == [ids[4], ids[3]]
    assert all("member" not in m for m in newest)  # REST messages carry the user only
    with pytest.raises(discord.HTTPException) as caught:
        await http.logs_from(fd.UPLOADS_CHANNEL, 101)
    assert caught.value.status == 400
    channel = client.get_channel(fd.UPLOADS_CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    read = [m.id async for m in channel.history(after=discord.Object(ids[1]), oldest_first=True)]
    assert read == ids[2:]


async def test_message_ids_hold_the_time_then_the_worker_as_discord_s_do(fake):
    start = discord.utils.time_snowflake(datetime.now(UTC))
    ids = [
        int((await fake.post_message(fd.UPLOADS_CHANNEL, f"m{n}", dispatch=False))["id"])
        for n in range(3)
    ]
    # after a cursor made from the moment before, even within its millisecond
    assert start < ids[0] < ids[1] < ids[2]
    assert all((i >> 17) & 0b11111 == 1 for i in ids)  # worker 1, as in Discord's example id
    made = discord.utils.snowflake_time(ids[0])
    assert abs(made - datetime.now(UTC)) < timedelta(seconds=5)


async def test_history_is_emptied_when_the_intent_is_off(fake, clients):
    client = Listener(content=False)
    clients.append(client)
    await connected(client)
    await fake.post_message(fd.UPLOADS_CHANNEL, "hi", files=(("a.jpg", JPEG, "image/jpeg"),))
    fake.message_content_allowed = False
    [message] = await client.http.logs_from(fd.UPLOADS_CHANNEL, 10)
    assert (message["content"], message["attachments"]) == ("", [])


async def test_reactions_and_members(fake, clients):
    client = Listener(content=False)
    clients.append(client)
    await connected(client)
    posted = await fake.post_message(fd.UPLOADS_CHANNEL, "hi", roles=(fd.MEMBER_ROLE,))
    channel = client.get_channel(fd.UPLOADS_CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    await channel.get_partial_message(int(posted["id"])).add_reaction("\N{WHITE HEAVY CHECK MARK}")
    assert fake.reactions_on(int(posted["id"])) == ["\N{WHITE HEAVY CHECK MARK}"]
    with pytest.raises(discord.NotFound):
        await channel.get_partial_message(12345).add_reaction("\N{WHITE HEAVY CHECK MARK}")
    member = await channel.guild.fetch_member(fd.USER_ID)
    assert [r.id for r in member.roles][1:] == [fd.MEMBER_ROLE]
    with pytest.raises(discord.NotFound):
        await channel.guild.fetch_member(424242)


async def test_an_interaction_carries_the_members_client_language(fake, clients):
    """Discord sends the member's client language with every interaction (``locale``) beside
    the server's (``guild_locale``); the fake does the same, as discord.py reads them."""
    seen: list[tuple[str, str | None]] = []

    class Hearing(Listener):
        async def on_interaction(self, interaction: discord.Interaction) -> None:
            guild = interaction.guild_locale.value if interaction.guild_locale else None
            seen.append((interaction.locale.value, guild))

    client = Hearing(content=False)
    clients.append(client)
    await connected(client)
    # the fake builds an interaction from the registered command, as Discord's client does
    status = {"type": 1, "name": "status", "description": "status"}
    command = {"name": "immich", "description": "immich", "type": 1, "options": [status]}
    await client.http.bulk_upsert_guild_commands(fd.APP_ID, fd.GUILD_ID, [command])
    await fake.interact([{"type": 1, "name": "status", "options": []}], locale="de")
    await fake.interact([{"type": 1, "name": "status", "options": []}])
    await fake.wait_for(lambda: len(seen) == 2)
    assert seen == [("de", "en-US"), ("en-US", "en-US")]
