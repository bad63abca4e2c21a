"""``doctor`` with ``discord.ingest``: the Message Content intent and each ingest channel."""

from __future__ import annotations

from dataclasses import replace

from sidecar.config.model import IngestChannel
from sidecar.discord.intents import ingest_checks
from tests.fakes import fake_discord as fd
from tests.test_ingest import ingest_settings


async def test_intent_granted_and_channel_usable(fake) -> None:
    checks = await ingest_checks(ingest_settings())
    assert [c.ok for c in checks] == [True, True]
    assert "ingest channel #uploads: the bot can read, react and reply" in checks[1].line


async def test_intent_refused_is_one_failed_check_naming_the_switch(fake) -> None:
    fake.message_content_allowed = False
    [check] = await ingest_checks(ingest_settings())
    assert not check.ok
    assert "Discord refused the Message Content intent" in check.line
    assert check.fix.endswith("Bot > Privileged Gateway Intents > Message Content Intent")


async def test_a_channel_the_bot_cannot_read_is_named(fake) -> None:
    settings = ingest_settings()
    hidden = fake.add_channel("secret", deny=fd.READ_HISTORY | fd.ADD_REACTIONS)
    channel = IngestChannel(hidden, allowed_roles=("uploaders",))
    settings = replace(settings, discord=replace(settings.discord, ingest=(channel,)))
    _, check = await ingest_checks(settings)
    assert not check.ok
    assert "the bot lacks Read Message History, Add Reactions" in check.line
