"""Which key permissions each feature needs (sidecar.immich.permissions): the start-up check, the
slash commands' answers when a permission is missing, and the docs' list, all from one place.

The Immich side is the real client against the fake Immich (which answers 403 like Immich for a
call whose ``x-immich-permission`` the key lacks); the Discord side is the real discord.py bot
against the fake Discord.
"""

from __future__ import annotations

import io
import logging
import re
import textwrap
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from sidecar.app import Sidecar
from sidecar.config.model import (
    AlbumFilter,
    IngestChannel,
    MemoriesCommand,
    PeopleFilter,
    PersonCommand,
    Post,
    Rule,
    Secret,
    UploadCommand,
)
from sidecar.discord.bot import SidecarBot
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.status import StatusInfo
from sidecar.immich.client import ImmichClient
from sidecar.immich.permissions import (
    ALBUM_WATCHING,
    FEATURES,
    PEOPLE,
    PERSON,
    UPLOAD_ALBUM_BY_NAME,
    WATCHING,
    features_in_use,
    gaps,
    rule_features,
)
from sidecar.messages.texts import SORRY as SORRY_TEXT
from sidecar.ops.metrics import Metrics
from tests.e2e_harness import REPO, free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.test_discord_bot import JPEG, fixed_status, make_settings, start_bot
from tests.test_discord_commands import command, text_of, upload

EVERYTHING_BUT = {
    "person.statistics": (
        "asset.read",
        "asset.view",
        "asset.statistics",
        "person.read",
        "asset.upload",
        "asset.update",
        "albumAsset.create",
        "album.read",
        "memory.read",
        "user.read",
    ),
    "album.read": (
        "asset.read",
        "asset.view",
        "asset.statistics",
        "person.read",
        "person.statistics",
        "asset.upload",
        "asset.update",
        "albumAsset.create",
        "user.read",
    ),
}


# ---------------------------------------------------------------------------- pure facts


def test_features_in_use_follow_the_config() -> None:
    with_bot = make_settings(upload=UploadCommand(album="From Discord"))
    assert [f.key for f in features_in_use(with_bot, bot=True)] == [
        "upload",
        "upload_album_by_name",
        "save_command",
        "person",
        "memories_command",
        "state_owner",
    ]
    assert [f.key for f in features_in_use(with_bot, bot=False)] == ["state_owner"]
    ingest = replace(
        with_bot,
        discord=replace(
            with_bot.discord,
            ingest=(IngestChannel(1, album="Family"), IngestChannel(2, album="From Discord")),
        ),
    )
    assert [f.key for f in features_in_use(ingest, bot=True)][-4:] == [
        "ingest",
        "person",
        "memories_command",
        "state_owner",
    ]
    assert "ingest" not in [f.key for f in features_in_use(ingest, bot=False)]
    by_id = make_settings(upload=UploadCommand(album="0b6a4f7e-5d2c-4e8a-9a51-3f2d8c1b7e40"))
    assert "upload_album" in [f.key for f in features_in_use(by_id, bot=True)]
    off = make_settings(upload=UploadCommand(enabled=False))
    off = replace(
        off,
        discord=replace(
            off.discord,
            person=PersonCommand(enabled=False),
            memories=MemoriesCommand(enabled=False),
        ),
    )
    assert [f.key for f in features_in_use(off, bot=True)] == ["state_owner"]
    posts = replace(
        off,
        posts=(
            Post("m", "memories", "0 9 * * *", ("photos",)),
            Post("b", "birthdays", "0 8 * * *", ("photos",), people=("Alice",)),
        ),
    )
    assert [f.key for f in features_in_use(posts, bot=False)] == [
        "people",
        "memory_posts",
        "birthday_posts",
        "state_owner",
    ]
    by_person_id = Rule(
        "ids", ("photos",), people=PeopleFilter(any=("0b6a4f7e-5d2c-4e8a-9a51-3f2d8c1b7e40",))
    )
    by_name = Rule("kids", ("photos",), people=PeopleFilter(any=("Alice",)))
    album = Rule("holiday", ("photos",), albums=AlbumFilter(("Holiday",)))
    assert rule_features(by_person_id) == (WATCHING,)  # an id needs no look-up
    assert rule_features(by_name) == (WATCHING, PEOPLE)
    assert rule_features(album) == (ALBUM_WATCHING,)
    rules = replace(off, rules=(album, by_name))
    assert [f.key for f in features_in_use(rules, bot=False)] == [
        "watching",
        "people",
        "album_watching",
        "state_owner",
    ]


def test_gaps_name_what_each_feature_lacks_and_all_grants_everything() -> None:
    granted = {"asset.read", "asset.view", "asset.statistics", "person.read"}
    found = gaps(FEATURES, granted)
    assert WATCHING not in found and PEOPLE not in found
    assert found[PERSON] == ("person.statistics",)
    assert found[UPLOAD_ALBUM_BY_NAME] == ("albumAsset.create", "album.read")
    assert gaps(FEATURES, {"all"}) == {}
    assert PERSON.off_sentence(["person.statistics"]) == (
        "/immich person is off: the Immich API key lacks person.statistics; add it to the key "
        "(Immich: Account settings > API keys)"
    )


def test_off_sentences_agree_with_their_labels() -> None:
    """ "album rules is off" read wrong: a label naming several things takes "are"."""
    off = {f.label: f.off_sentence(f.permissions) for f in FEATURES}
    assert off["album rules"].startswith("album rules are off: the Immich API key lacks")
    assert off["memories posts"].startswith("memories posts are off:")
    assert off["birthday posts"].startswith("birthday posts are off:")
    assert off["watching for new photos"].startswith("watching for new photos is off:")
    assert off["/immich memories"].startswith("/immich memories is off:")
    assert off["spotted DMs"].startswith("spotted DMs are off:")
    assert off["/immich claim and members"].startswith("/immich claim and members are off:")
    assert off["the Favourite button"].startswith("the Favourite button is off:")


def test_the_docs_list_exactly_the_permissions_of_each_feature() -> None:
    page = (REPO / "docs" / "immich-api-key.md").read_text()
    table = page[page.index("| feature | key permissions |") :]
    table = table[: table.index("\n\n")]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = re.findall(r"`([A-Za-z.]+)`", cells[1])
    assert rows == {feature.label: list(feature.permissions) for feature in FEATURES}


# ---------------------------------------------------------------------------- commands


@pytest.fixture
async def immich_client(request) -> AsyncIterator[tuple[FakeImmich, ImmichClient]]:
    lacking = request.param
    async with FakeImmich(permissions=EVERYTHING_BUT[lacking]) as server:
        server.add_person("Alice")
        server.add_album("From Discord")
        async with ImmichClient(
            server.url, Secret(server.api_key), Metrics(), max_attempts=1
        ) as client:
            yield server, client


@pytest.mark.parametrize("immich_client", ["person.statistics"], indirect=True)
async def test_person_without_statistics_permission_says_so_not_sorry(fake, immich_client):
    _, client = immich_client
    bot, _ = await start_bot(fake, client, Metrics(), make_settings())
    try:
        answer = await command(fake, "person", [{"type": 3, "name": "name", "value": "Alice"}])
    finally:
        await bot.close()
    text = text_of(answer)
    assert text != SORRY_TEXT.singular
    assert text == (
        "Sorry, /immich person is off: the Immich API key lacks person.statistics; "
        "add it to the key (Immich: Account settings > API keys)."
    )


@pytest.mark.parametrize("immich_client", ["album.read"], indirect=True)
async def test_upload_to_named_album_without_album_read_says_which_permission(fake, immich_client):
    _, client = immich_client
    settings = make_settings(
        upload=UploadCommand(allowed_roles=("uploaders",), album="From Discord")
    )
    bot, _ = await start_bot(fake, client, Metrics(), settings)
    try:
        answer = await upload(fake, [("a.jpg", JPEG, None)])
    finally:
        await bot.close()
    text = text_of(answer)
    assert "`a.jpg`: uploaded" in text
    assert (
        "Could not add them to the album: adding uploads to an album given by name is off: "
        "the Immich API key lacks album.read; add it to the key"
    ) in text
    assert "403" not in text


# ---------------------------------------------------------------------------- start-up


async def test_start_says_once_which_features_are_off(fake, tmp_path, monkeypatch, caplog):
    async with FakeImmich(permissions=EVERYTHING_BUT["person.statistics"]) as server:
        server.add_person("Alice")
        monkeypatch.setenv("IMMICH_API_KEY", server.api_key)
        monkeypatch.setenv("DISCORD_TOKEN", fd.TOKEN)
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=server.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules=textwrap.dedent("""\
                         - name: kids
                           people: {any: [Alice]}
                           targets: [stdout]
                         """),
            extra="discord:\n  token: ${DISCORD_TOKEN}\n",
        )
        sidecar = Sidecar(Path(path), stdout=io.StringIO())
        caplog.set_level(logging.INFO, logger="sidecar")
        await sidecar.start()
        try:
            for _ in range(3):
                await sidecar.poll_job.run()
        finally:
            await sidecar.stop()
    said = [r for r in caplog.records if "is off" in r.getMessage()]
    assert [(r.levelname, r.getMessage()) for r in said] == [
        (
            "WARNING",
            "/immich person is off: the Immich API key lacks person.statistics; add it to the key "
            "(Immich: Account settings > API keys)",
        )
    ]


# ---------------------------------------------------------------------------- decided once


def test_access_says_each_change_once_and_a_refusal_does_not_flap(caplog) -> None:
    metrics = Metrics()
    access = FeatureAccess(metrics)
    caplog.set_level(logging.INFO, logger="sidecar")
    assert access.use([WATCHING, PEOPLE, ALBUM_WATCHING]) == []  # nothing known yet
    granted = ["asset.read", "asset.view", "asset.statistics", "album.read", "user.read"]
    [change] = access.granted(granted)
    assert (change.feature, change.missing) == (PEOPLE, ("person.read",))
    assert access.granted(granted) == []  # read again, poll after poll: nothing new to say
    assert not access.is_on(PEOPLE) and access.is_on(ALBUM_WATCHING)
    assert (
        metrics.registry.get_sample_value("immich_sidecar_feature_enabled", {"feature": "people"})
        == 0
    )
    # A 403 for album.read although the listing grants it: off until the listing changes.
    [refused] = access.refused("album.read")
    assert refused.feature is ALBUM_WATCHING and not refused.on
    assert access.granted(granted) == []
    assert not access.is_on(ALBUM_WATCHING)
    back = access.granted([*granted, "person.read"])
    assert {(c.feature, c.on) for c in back} == {(PEOPLE, True), (ALBUM_WATCHING, True)}
    assert access.off_sentences() == []
    assert [r.getMessage() for r in caplog.records] == [
        PEOPLE.off_sentence(["person.read"]),
        ALBUM_WATCHING.off_sentence(["album.read"]),
        "finding people by name is on: the Immich API key now has person.read",
        "album rules are on: the Immich API key now has album.read, asset.read, asset.view",
    ]


def test_a_key_with_all_still_loses_what_immich_refuses() -> None:
    access = FeatureAccess(Metrics())
    access.use([WATCHING, PEOPLE])
    assert access.granted(["all"]) == []
    assert [c.feature for c in access.refused("person.read")] == [PEOPLE]
    assert access.is_on(WATCHING)


def test_the_403_message_names_the_permission() -> None:
    assert missing_permission("Missing required permission: person.read") == "person.read"
    assert missing_permission("Forbidden") is None


async def test_status_lists_what_is_off(fake) -> None:
    async def status() -> StatusInfo:
        info = await fixed_status()
        return replace(info, features_off=(PEOPLE.off_sentence(["person.read"]),))

    async with ImmichClient("http://127.0.0.1:9", Secret("unused"), Metrics()) as client:
        bot = SidecarBot(make_settings(), client, Metrics(), status, guild_ready_timeout=0.05)
        await bot.__aenter__()
        try:
            await bot.launch(Secret(fd.TOKEN), ready_timeout=10)
            answer = await command(fake, "status", [])
        finally:
            await bot.close()
    assert (
        "Off: finding people by name is off: the Immich API key lacks person.read; add it to "
        "the key (Immich: Account settings > API keys)"
    ) in text_of(answer)


async def test_a_name_unknown_once_its_permission_comes_is_said_once(tmp_path, monkeypatch, caplog):
    lacking = [p for p in EVERYTHING_BUT["person.statistics"] if p != "person.read"]
    async with FakeImmich(permissions=lacking) as server:
        monkeypatch.setenv("IMMICH_API_KEY", server.api_key)
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=server.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules="- name: kids\n  people: {any: [Zed]}\n  targets: [stdout]\n",
        )
        sidecar = Sidecar(Path(path), stdout=io.StringIO())
        caplog.set_level(logging.INFO, logger="sidecar")
        await sidecar.start()  # Zed cannot be looked up yet: the rule is off, the start is not
        try:
            await sidecar.poll_job.run()
            server.permissions.append("person.read")
            for _ in range(4):
                await sidecar.poll_job.run()
            assert "a rule names a person Immich does not know" in "; ".join(sidecar.readiness())
        finally:
            await sidecar.stop()
    unknown = [r.getMessage() for r in caplog.records if "no person called 'Zed'" in r.getMessage()]
    assert len(unknown) == 1, unknown
    assert any("finding people by name is on" in r.getMessage() for r in caplog.records)


async def test_without_user_read_the_sidecar_stays_ready_and_says_so_once(
    tmp_path, monkeypatch, caplog
):
    granted = [*EVERYTHING_BUT["person.statistics"], "person.statistics"]
    granted.remove("user.read")
    async with FakeImmich(permissions=granted) as server:
        server.add_person("Alice")
        monkeypatch.setenv("IMMICH_API_KEY", server.api_key)
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=server.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules="- name: kids\n  people: {any: [Alice]}\n  targets: [stdout]\n",
        )
        sidecar = Sidecar(Path(path), stdout=io.StringIO())
        caplog.set_level(logging.INFO, logger="sidecar")
        await sidecar.start()
        try:
            for _ in range(3):
                await sidecar.poll_job.run()
            assert sidecar.readiness() == []
            [off] = sidecar.status().features_off
            assert off.startswith("checking whose state file it is is off: ")
        finally:
            await sidecar.stop()
        assert server.api_requests("GET", "/api/users/me") == []
    said = [r.getMessage() for r in caplog.records if " is off" in r.getMessage()]
    assert said == [
        "checking whose state file it is is off: the Immich API key lacks user.read; add it to "
        "the key (Immich: Account settings > API keys)"
    ]


def test_shared_links_are_used_by_sharing_targets_and_off_they_keep_the_sidecar_ready() -> None:
    """A target with ``links: shared`` needs ``sharedLink.create``; without it the target links
    into Immich, so readiness leaves it out (the status page still says it)."""
    from sidecar.immich.permissions import SHARED_LINKS
    from sidecar.targets.discord.channel import ChannelTarget
    from sidecar.targets.presentation import Presentation

    plain = make_settings({"family": ChannelTarget("family", 1)})
    assert SHARED_LINKS not in features_in_use(plain, bot=False)
    sharing = make_settings(
        {"family": ChannelTarget("family", 1, presentation=Presentation(links="shared"))}
    )
    used = features_in_use(sharing, bot=False)
    assert SHARED_LINKS in used
    access = FeatureAccess(Metrics())
    access.use(used)
    access.granted(["asset.read", "asset.view", "asset.statistics", "person.read", "user.read"])
    assert not access.is_on(SHARED_LINKS)
    assert access.off_sentences(safety=False) == []
    assert access.off_sentences() == [SHARED_LINKS.off_sentence(["sharedLink.create"])]
