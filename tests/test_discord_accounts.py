"""``/immich person`` and ``/immich upload`` with several Immich accounts (issue 28): the
``account`` option (autocompleted from immich.accounts) exists only then, picks whose library
is asked, and without it the configured default is. The real discord.py client against the
fake Discord, each account a real ImmichClient against the fake Immich's own user."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from sidecar.config.model import Secret, UploadCommand
from sidecar.discord.bot import SidecarBot
from sidecar.immich.client import ImmichClient
from sidecar.ops.metrics import Metrics
from tests.fakes import fake_discord as fd
from tests.fakes.discord_commands import InvalidInteraction
from tests.fakes.fake_immich import FakeImmich
from tests.test_discord_bot import JPEG, fixed_status, make_settings
from tests.test_discord_commands import command, text_of

KEYS = {"dad": "dad-key", "mum": "mum-key"}


class Household:
    def __init__(self, immich: FakeImmich) -> None:
        self.immich = immich
        self.dad = immich.add_user("Dad", api_key=KEYS["dad"])
        self.mum = immich.add_user("Mum", api_key=KEYS["mum"])
        self.grandma = immich.add_person("Grandma", owner=self.dad)
        self.oma = immich.add_person("Oma", owner=self.mum)
        self.omas_twin = immich.add_person("Oma Rose", owner=self.mum)
        for owner, person in ((self.dad, self.grandma), (self.mum, self.oma)):
            immich.add_asset(owner=owner, people=[person])
        immich.add_asset(owner=self.mum, people=[self.oma])


@pytest.fixture
async def household() -> AsyncIterator[Household]:
    async with FakeImmich(version=(3, 1, 0)) as immich:
        yield Household(immich)


async def started(
    fake: fd.FakeDiscord,
    household: Household,
    names: tuple[str, ...],
    upload: UploadCommand | None = None,
) -> tuple[SidecarBot, dict[str, ImmichClient]]:
    clients = {
        name: ImmichClient(household.immich.url, Secret(KEYS[name]), Metrics()) for name in names
    }
    settings = make_settings(upload=upload or UploadCommand(allowed_roles=("uploaders",)))
    settings = replace(
        settings,
        immich=replace(settings.immich, url=household.immich.url, external_url="https://p.test"),
    )
    default = clients[(upload.account if upload else None) or names[0]]
    bot = SidecarBot(
        settings,
        default,
        Metrics(),
        fixed_status,
        guild_ready_timeout=0.05,
        accounts=clients if len(names) > 1 else None,
    )
    await bot.__aenter__()
    await bot.launch(Secret(fd.TOKEN), ready_timeout=10)
    return bot, clients


async def close(bot: SidecarBot, clients: dict[str, ImmichClient]) -> None:
    await bot.close()
    for client in clients.values():
        await client.aclose()


def options_of(fake: fd.FakeDiscord, sub: str) -> dict[str, dict[str, Any]]:
    [immich] = fake.synced_commands[str(fd.GUILD_ID)][:1]
    [found] = [o for o in immich["options"] if o["name"] == sub]
    return {o["name"]: o for o in found.get("options", [])}


def person(name: str, account: str | None = None) -> list[dict[str, Any]]:
    options = [{"name": "name", "value": name}]
    return options + ([{"name": "account", "value": account}] if account else [])


async def complete(fake: fd.FakeDiscord, sub: str, *options: dict[str, Any]) -> list[Any]:
    token = await fake.interact([{"name": sub, "options": list(options)}], autocomplete=True)
    await fake.wait_for(lambda: fake.responses_for(token))
    [answer] = fake.responses_for(token)
    return list(answer["payload"]["data"]["choices"])


async def test_one_account_has_no_account_option(fake, household) -> None:
    bot, clients = await started(fake, household, ("dad",))
    try:
        assert "account" not in options_of(fake, "person")
        assert "account" not in options_of(fake, "upload")
        with pytest.raises(InvalidInteraction, match="no option 'account'"):
            await fake.interact([{"name": "person", "options": person("Grandma", "mum")}])
        answer = await command(fake, "person", person("Grandma"))
        assert answer["payload"]["embeds"][0]["title"] == "Grandma"
    finally:
        await close(bot, clients)


async def test_the_account_option_picks_whose_people_are_asked(fake, household) -> None:
    bot, clients = await started(fake, household, ("dad", "mum"))
    try:
        for sub in ("person", "upload"):
            account = options_of(fake, sub)["account"]
            assert account["type"] == 3 and account["autocomplete"] is True
            assert not account.get("required") and account["description"]
        assert await complete(
            fake, "person", {"name": "account", "value": "", "focused": True}
        ) == [
            {"name": "dad", "value": "dad"},
            {"name": "mum", "value": "mum"},
        ]
        assert await complete(
            fake, "person", {"name": "account", "value": "M", "focused": True}
        ) == [{"name": "mum", "value": "mum"}]
        # Oma is Mum's: found with account mum, and not in the default (first) account.
        answer = await command(fake, "person", person("Oma", "mum"))
        [embed] = answer["payload"]["embeds"]
        assert (embed["title"], embed["description"]) == ("Oma", "2 photos in Immich")
        assert embed["footer"]["text"] == "account mum"
        assert text_of(await command(fake, "person", person("Oma"))).startswith("No one called")
        assert "Grandma" in str(await command(fake, "person", person("Grandma")))
        wrong = text_of(await command(fake, "person", person("Oma", "leo")))
        assert wrong == "No Immich account called leo here; pick one of: dad and mum."
    finally:
        await close(bot, clients)


async def test_name_autocomplete_follows_the_account_filled_in(fake, household) -> None:
    bot, clients = await started(fake, household, ("dad", "mum"))
    try:
        typed = {"name": "name", "value": "Oma", "focused": True}
        in_mum = await complete(fake, "person", {"name": "account", "value": "mum"}, typed)
        assert [c["name"] for c in in_mum] == ["Oma", "Oma Rose"]
        assert await complete(fake, "person", typed) == []  # the default account has no Oma
        gma = {"name": "name", "value": "Grandma", "focused": True}
        assert await complete(fake, "person", {"name": "account", "value": "nobody"}, gma) == []
    finally:
        await close(bot, clients)


async def test_uploads_go_into_the_account_chosen_else_the_upload_account(fake, household) -> None:
    upload = UploadCommand(allowed_roles=("uploaders",), account="mum")
    bot, clients = await started(fake, household, ("dad", "mum"), upload)
    owners = {}
    try:
        for account, name in ((None, "default.jpg"), ("dad", "dads.jpg")):
            picture = fake.add_attachment(name, JPEG + name.encode(), "image/jpeg")
            options = [{"name": "file1", "value": picture["id"]}]
            options += [{"name": "account", "value": account}] if account else []
            answer = await command(
                fake, "upload", options, roles=(fd.UPLOADER_ROLE,), attachments=[picture]
            )
            [asset] = re.findall(r"/photos/([0-9a-f-]{36})", text_of(answer))
            owners[name] = household.immich.asset_json(asset)["ownerId"]
    finally:
        await close(bot, clients)
    assert owners["default.jpg"] == household.mum  # discord.commands.upload.account
    assert owners["dads.jpg"] == household.dad
