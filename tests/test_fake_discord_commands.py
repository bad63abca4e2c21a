"""The fake Discord's slash-command options and autocomplete, pinned with the real discord.py
client: an interaction is built from the registered command as Discord's client builds it,
and an autocomplete answer is checked as Discord checks it (``tests.fakes.discord_commands``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import discord
import pytest
from discord import app_commands

from tests.fakes import fake_discord as fd
from tests.fakes.discord_commands import InvalidInteraction


class Client(discord.Client):
    """A bot with one group, ``/pets``: ``find name [kind]`` (name autocompleted from what
    ``kind`` holds so far), ``feed size`` (choices), ``show picture`` (an attachment)."""

    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.none(), guild_ready_timeout=0.05)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.seen: list[tuple[str, Any]] = []
        self.too_many = False  # the autocomplete answers more than Discord takes

    async def setup_hook(self) -> None:
        self.tree.add_command(pets(self))

    async def on_ready(self) -> None:
        for guild in self.guilds:
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)
        self.ready.set()


def pets(client: Client) -> app_commands.Group:
    group = app_commands.Group(name="pets", description="Pets")

    @group.command(name="find", description="Find a pet")
    async def find(interaction: discord.Interaction, name: str, kind: str | None = None) -> None:
        client.seen.append(("find", (name, kind)))
        await interaction.response.send_message(f"found {name} ({kind})", ephemeral=True)

    @find.autocomplete("name")
    async def names(interaction: discord.Interaction, current: str) -> list[Any]:
        kind = interaction.namespace.kind
        client.seen.append(("complete", (current, kind)))
        many = 30 if client.too_many else 2
        return [
            app_commands.Choice(name=f"{kind or 'pet'} {current} {n}", value=f"{current}{n}")
            for n in range(many)
        ]

    @group.command(name="feed", description="Feed the pets")
    async def feed(interaction: discord.Interaction, size: Literal["small", "big"]) -> None:
        client.seen.append(("feed", size))
        await interaction.response.send_message("fed", ephemeral=True)

    @group.command(name="show", description="Show a picture")
    async def show(interaction: discord.Interaction, picture: discord.Attachment) -> None:
        client.seen.append(("show", picture.filename))
        await interaction.response.send_message("shown", ephemeral=True)

    return group


@pytest.fixture
async def client(fake: fd.FakeDiscord) -> AsyncIterator[Client]:
    bot = Client()
    await bot.login(fd.TOKEN)
    runner = asyncio.create_task(bot.connect(reconnect=False))
    await asyncio.wait_for(bot.ready.wait(), 10)
    yield bot
    await bot.close()
    runner.cancel()


def sub(name: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "options": list(options)}]


async def seen(client: Client, count: int) -> list[tuple[str, Any]]:
    for _ in range(500):
        if len(client.seen) >= count:
            return client.seen
        await asyncio.sleep(0.01)
    raise AssertionError(f"the client saw {client.seen}")


async def test_options_arrive_with_their_registered_types(fake, client) -> None:
    token = await fake.interact(
        sub("find", {"name": "name", "value": "Rex"}, {"name": "kind", "value": "dog"}),
        command="pets",
    )
    assert await seen(client, 1) == [("find", ("Rex", "dog"))]
    [event] = [r for r in fake.responses_for(token)]
    assert event["payload"]["data"]["content"] == "found Rex (dog)"
    # The interaction names the registered command by its id, as Discord does.
    [registered] = fake.synced_commands[str(fd.GUILD_ID)]
    assert registered["name"] == "pets" and registered["description"] == "Pets"


async def test_what_the_client_cannot_send_is_a_test_mistake(fake, client) -> None:
    cases = [
        sub("find", {"name": "name", "value": "Rex"}, {"name": "colour", "value": "red"}),
        sub("find", {"name": "kind", "value": "dog"}),  # the required name left out
        sub("find", {"type": 4, "name": "name", "value": 3}),  # registered as a string
        sub("feed", {"name": "size", "value": "huge"}),  # not one of its choices
        sub("show", {"name": "picture", "value": "123"}),  # no such upload resolved
        sub("walk"),
        [],  # a group needs its subcommand
    ]
    for options in cases:
        with pytest.raises(InvalidInteraction):
            await fake.interact(options, command="pets")
    with pytest.raises(InvalidInteraction, match="not registered"):
        await fake.interact(sub("find", {"name": "name", "value": "Rex"}), command="cats")
    await asyncio.sleep(0.1)
    assert client.seen == []  # nothing was dispatched


async def test_choices_and_attachments_that_exist_are_sent(fake, client) -> None:
    await fake.interact(sub("feed", {"name": "size", "value": "big"}), command="pets")
    upload = fake.add_attachment("cat.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 16, "image/png")
    await fake.interact(
        sub("show", {"name": "picture", "value": upload["id"]}),
        command="pets",
        attachments=[upload],
    )
    assert await seen(client, 2) == [("feed", "big"), ("show", "cat.png")]


async def test_autocomplete_carries_what_was_filled_so_far(fake, client) -> None:
    token = await fake.interact(
        sub(
            "find",
            {"name": "kind", "value": "cat"},
            {"name": "name", "value": "Ti", "focused": True},
        ),
        command="pets",
        autocomplete=True,
    )
    assert await seen(client, 1) == [("complete", ("Ti", "cat"))]
    await fake.wait_for(lambda: fake.responses_for(token))
    [answer] = fake.responses_for(token)
    assert answer["payload"]["type"] == 8
    assert answer["payload"]["data"]["choices"][0] == {"name": "cat Ti 0", "value": "Ti0"}
    # Required options may still be empty while one is typed; but exactly one is focused, and
    # only an option registered with autocomplete gets one.
    for options in (
        sub("find", {"name": "name", "value": "Ti"}),
        sub("find", {"name": "kind", "value": "c", "focused": True}),
        sub("find", {"name": "name", "value": 7, "focused": True}),
    ):
        with pytest.raises(InvalidInteraction):
            await fake.interact(options, command="pets", autocomplete=True)
    with pytest.raises(InvalidInteraction, match="focused"):
        await fake.interact(
            sub("find", {"name": "name", "value": "Ti", "focused": True}), command="pets"
        )


async def test_an_answer_discord_refuses_is_a_400_and_shows_nothing(fake, client) -> None:
    client.too_many = True
    token = await fake.interact(
        sub("find", {"name": "name", "value": "Ti", "focused": True}),
        command="pets",
        autocomplete=True,
    )
    await fake.wait_for(lambda: fake.refused_autocompletes)
    [refused] = fake.refused_autocompletes
    assert refused["token"] == token and len(refused["payload"]["data"]["choices"]) == 30
    assert fake.responses_for(token) == []  # the user sees no suggestions


def test_the_choice_rules_are_discords() -> None:
    from tests.fakes.discord_commands import choices_problem

    assert choices_problem([{"name": "a", "value": "a"}], 3) is None
    long_name = [{"name": "x" * 101, "value": "x"}]
    problem = choices_problem(long_name, 3)
    assert problem is not None and problem["code"] == 50035
    assert "name" in problem["errors"]["data"]["choices"]["0"]
    assert choices_problem([{"name": "n", "value": "v" * 101}], 3) is not None
    assert choices_problem([{"name": "n", "value": "1"}], 4) is not None  # an integer option
    assert choices_problem([{"name": "n", "value": 1}], 4) is None
