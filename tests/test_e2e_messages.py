"""Messages in the family's language, end to end: the real ``immich-sidecar run`` process
against the fake Immich and the fake Discord on 127.0.0.1. ``locale: de`` makes the
notification, an album post, a memories post and a birthday post German (1 and 3 photos, a
German date, "und" between names); a target with ``locale: fr`` beside it is French; a
``messages.content`` template renders exactly what it says, a list of them picks among them;
a name like ``@everyone`` or ``**x**`` shows literally and pings nobody; a bad template in a
reload is refused and the running config keeps sending."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

MINUTE_AND_MORE = 75.0  # the every-minute posts have fired by then
GERMAN_DAYS = ["Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"]
GERMAN_MONTHS = ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
                 "September", "Oktober", "November", "Dezember"]  # fmt: skip

RULES = """\
- name: kids
  people: {any: [Alice, Bob]}
  targets: [family, famille]
- name: hearts
  people: {any: [Carol]}
  targets: [stdout, family]
  messages:
    content: "{{ people | names }} 💕 {{ count }}"
- name: greetings
  people: {any: [Dave]}
  targets: [stdout]
  messages:
    content: ["Hallo {{ count }}", "Servus {{ count }}"]
- name: holiday
  albums: {any: [Urlaub]}
  targets: [family]
"""
TARGETS = """\
stdout: {console: true}
family: {webhook_url: "${FAMILY_HOOK}"}
famille: {webhook_url: "${FAMILLE_HOOK}", locale: fr, layout: embeds}
"""
POSTS = """\
locale: de
timezone: UTC
posts:
  - name: memories
    kind: memories
    cron: "* * * * *"
    targets: [family, famille]
  - name: birthdays
    kind: birthdays
    cron: "* * * * *"
    targets: [family, famille]
    max_pictures: 1
"""


def text_of(message: fd.RecordedMessage) -> str:
    """What a message says: its content (embeds), or its text block (a gallery)."""
    blocks = [c["content"] for c in message.payload.get("components") or () if c["type"] == 10]
    return str(message.payload.get("content") or "\n".join(blocks))


def contents(discord: fd.FakeDiscord, channel: int) -> list[str]:
    """The first line of each message in the channel: its headline."""
    return [text_of(m).splitlines()[0] for m in discord.messages_in(channel)]


async def test_a_german_family_with_a_french_target(tmp_path):
    today = datetime.now(UTC).date()
    taken = datetime(today.year - 3, today.month, min(today.day, 28), 10, tzinfo=UTC)
    if (taken.month, taken.day) != (today.month, today.day):
        pytest.skip("today has no day of the same number three years ago")
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        async with FakeImmich(version=(3, 1, 0)) as immich:
            await _run(tmp_path, immich, discord, today, taken)
    finally:
        await discord.stop()


async def _run(tmp_path, immich, discord, today, taken) -> None:
    alice = immich.add_person("Alice", birth_date=today.replace(year=today.year - 7))
    bob, carol, dave = (immich.add_person(n) for n in ("Bob", "Carol", "Dave"))
    everyone, stars = immich.add_person("@everyone"), immich.add_person("**x**")
    immich.add_asset(taken_at=taken, created_at=taken, people=[alice])
    immich.run_memory_job(today)
    album = immich.add_album("Urlaub")
    config, port = tmp_path / "config.yaml", free_port()
    family = discord.add_webhook(fd.PHOTOS_CHANNEL)
    famille = discord.add_webhook(fd.UPLOADS_CHANNEL)
    env = {"IMMICH_API_KEY": immich.api_key, "FAMILY_HOOK": family, "FAMILLE_HOOK": famille}

    def write(rules: str = RULES) -> None:
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=port,
            rules=rules,
            targets=TARGETS,
            extra=POSTS,
        )

    write()
    sidecar = SidecarProcess(config, env, port)
    await sidecar.start()
    german, french = fd.PHOTOS_CHANNEL, fd.UPLOADS_CHANNEL
    now = datetime.now(UTC)
    try:

        def said(channel: int, text: str) -> bool:
            return text in contents(discord, channel)

        def printed(text: str) -> bool:
            return any(n.get("text") == text for n in sidecar.notifications())

        immich.add_asset(created_at=now, people=[alice])
        await sidecar.wait_until(lambda: said(german, "Alice: 1 neues Foto"), "German, one")
        await sidecar.wait_until(lambda: said(french, "Alice : 1 nouvelle photo"), "French")
        for _ in range(3):
            immich.add_asset(created_at=now, people=[bob])
        await sidecar.wait_until(lambda: said(german, "Bob: 3 neue Fotos"), "German, three")
        await sidecar.wait_until(lambda: said(french, "Bob : 3 nouvelles photos"), "French")
        [bobs] = [m for m in discord.messages_in(german) if text_of(m).startswith("Bob")]
        assert text_of(bobs).splitlines()[1].startswith("**1** [Bob](")  # a gallery's lines
        labels = [
            b["label"]
            for c in bobs.payload["components"]
            if c["type"] == 1
            for b in c["components"]
        ]
        assert labels == ["In Immich öffnen"]
        [bobs] = [m for m in discord.messages_in(french) if text_of(m).startswith("Bob")]
        assert bobs.payload["embeds"][0]["title"] == "Nouvelle photo avec Bob"  # embeds layout
        assert bobs.payload["embeds"][0]["fields"][0]["name"] == "Qui"

        immich.add_asset(created_at=now, people=[carol])
        await sidecar.wait_until(lambda: printed("Carol 💕 1"), "the template, exactly")
        await sidecar.wait_until(lambda: said(german, "Carol 💕 1"), "the template on Discord")

        loud = immich.add_asset(created_at=now, people=[carol, everyone, stars])
        inert = "\\*\\*x\\*\\*, @\u200beveryone und Carol 💕 1"
        await sidecar.wait_until(lambda: said(german, inert), "names shown literally")
        [message] = [m for m in discord.messages_in(german) if text_of(m).startswith(inert)]
        assert message.payload["allowed_mentions"]["parse"] == []
        assert message.payload["allowed_mentions"]["users"] == []
        assert [n["text"] for n in sidecar.delivered(loud)] == ["**x**, @everyone und Carol 💕 1"]

        dave_asset = immich.add_asset(created_at=now, people=[dave])
        await sidecar.wait_for_delivery(dave_asset)
        assert sidecar.delivered(dave_asset)[0]["text"] in {"Hallo 1", "Servus 1"}

        old = now - timedelta(days=2)  # no new upload: only the album rule sees these
        added = [immich.add_asset(created_at=old, people=[alice, bob]) for _ in range(3)]
        immich.add_to_album(album, added)
        await sidecar.wait_until(
            lambda: said(german, "3 neue Fotos in **Urlaub** — Alice und Bob"), "the album post"
        )

        lines = len(sidecar.stderr)
        write(RULES.replace("{{ people | names }} 💕", "{{ nobody }} 💕"))
        await sidecar.wait_for_log("config reload rejected", after=lines)
        rejected = [line for line in sidecar.stderr[lines:] if "reload rejected" in line]
        line = next(n for n, t in enumerate(config.read_text().splitlines(), 1) if "nobody" in t)
        assert f"{config}:{line}: rules[1].messages.content: 'nobody' is undefined" in rejected[0]
        immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        await sidecar.wait_until(
            lambda: contents(discord, german).count("Alice: 1 neues Foto") == 2,
            "the running config sending on",
        )
        immich.add_asset(created_at=datetime.now(UTC), people=[carol])
        await sidecar.wait_until(
            lambda: contents(discord, german).count("Carol 💕 1") == 2, "the old template"
        )

        memory = f"📅 Heute vor 3 Jahren ({taken.year}): 1 Foto"
        birthday = "🎂 Alice wird heute 7"
        await sidecar.wait_until(
            lambda: said(german, memory) and said(german, birthday),
            "the German posts",
            limit=MINUTE_AND_MORE,
        )
        await sidecar.wait_until(
            lambda: (
                said(french, f"📅 Il y a 3 ans jour pour jour ({taken.year}) : 1 photo")
                and said(french, "🎂 Alice a 7 ans aujourd\u2019hui")
            ),
            "the French posts",
        )
        [post] = [m for m in discord.messages_in(german) if text_of(m).startswith(memory)]
        day = f"{GERMAN_DAYS[taken.weekday()]}, {taken.day}. {GERMAN_MONTHS[taken.month - 1]}"
        assert text_of(post).splitlines()[1] == f"{day} {taken.year}"  # a German date
        assert "Alice" not in json.dumps(post.payload["allowed_mentions"])
        [post] = [m for m in discord.messages_in(french) if text_of(m).startswith("📅")]
        assert post.payload["embeds"][0]["title"] == "Ouvrir dans Immich"
    finally:
        assert await sidecar.stop() == 0
