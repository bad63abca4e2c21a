"""The bot in each member's language: Discord's own localizations of the slash commands'
descriptions (from the catalogs, names left English), and replies in the member's Discord
client language where the sidecar speaks it, else the config's ``locale``."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sidecar.ops.metrics import Metrics
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import FakeImmich, make_settings, start_bot
from tests.test_discord_commands import command, text_of


def immich_group(fake: fd.FakeDiscord) -> dict[str, Any]:
    synced = [c for scope in fake.synced_commands.values() for c in scope]
    return next(c for c in synced if c["name"] == "immich")


async def test_command_descriptions_are_localized_and_names_stay_english(fake):
    bot, _ = await start_bot(fake, FakeImmich(), Metrics())
    try:
        group = immich_group(fake)
    finally:
        await bot.close()
    assert group["description"] == "Your Immich photo library"
    assert group["description_localizations"]["de"] == "Deine Immich-Fotobibliothek"
    assert group["description_localizations"]["pt-BR"] == "Sua biblioteca de fotos do Immich"
    assert group["description_localizations"]["sv-SE"] == "Ditt fotobibliotek i Immich"
    assert group["description_localizations"]["es-ES"] == "Tu fototeca de Immich"
    assert "de" not in (group.get("name_localizations") or {})
    upload = next(o for o in group["options"] if o["name"] == "upload")
    assert (
        upload["description_localizations"]["fr"] == "Envoyer des photos ou des vidéos dans Immich"
    )
    described = next(o for o in upload["options"] if o["name"] == "description")
    assert described["description_localizations"]["pl"] == "Opis każdego przesłanego pliku"
    assert all(len(v) <= 100 for v in upload["description_localizations"].values())


async def test_a_reply_speaks_the_members_language_else_the_configs(fake):
    settings = replace(make_settings(), locale="nl")
    bot, _ = await start_bot(fake, FakeImmich(), Metrics(), settings)
    try:
        german = text_of(await command(fake, "status", [], locale="de"))
        japanese = text_of(await command(fake, "status", [], locale="ja"))
    finally:
        await bot.close()
    assert "Immich: erreichbar (Version 2.7.5)" in german
    assert "Wartende Benachrichtigungen: 3" in german
    # Discord says Japanese, which the sidecar does not speak: the config's Dutch.
    assert "Immich: bereikbaar (versie 2.7.5)" in japanese
    assert "Wachtende meldingen: 3" in japanese
