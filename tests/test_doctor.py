"""``immich-sidecar doctor`` against the fake Immich and the fake Discord on 127.0.0.1: all green,
then one broken piece at a time, each a ✗ line that names the fix and a non-zero exit."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.doctor.runner import diagnose
from sidecar.immich.endpoints.keys import REQUIRED_PERMISSIONS
from tests.e2e_harness import REPO, free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.slow  # each test logs a bot in to the fake Discord

ALL_BUT_PERSON_READ = (
    "asset.read",
    "asset.view",
    "asset.statistics",
    "person.statistics",
    "asset.upload",
    "asset.update",
    "albumAsset.create",
    "album.read",
    "memory.read",
    "user.read",
)


@dataclass
class Setup:
    immich: FakeImmich
    discord: fd.FakeDiscord
    tmp: Path
    hook: str
    env: dict[str, str]
    people: str = "[Alice, Bob]"
    channel: int = fd.PHOTOS_CHANNEL
    more_rules: str = ""
    posts: str = ""
    targets: str = textwrap.dedent("""\
        family: {channel_id: "CHANNEL"}
        grandma: {webhook_url: "${GRANDMA_WEBHOOK_URL}"}
        stdout: {console: true}
        """)

    def write(self) -> Path:
        path = self.tmp / "config.yaml"
        write_config(
            path,
            immich_url=self.immich.url,
            state=self.tmp / "data" / "state.db",
            metrics_port=free_port(),
            targets=self.targets.replace("CHANNEL", str(self.channel)),
            rules=textwrap.dedent(f"""\
                - name: kids
                  people: {{any: {self.people}}}
                  targets: [family, grandma, stdout]
                """)
            + self.more_rules,
            extra=textwrap.dedent("""\
                discord:
                  token: ${DISCORD_TOKEN}
                  commands:
                    upload: {allowed_roles: [uploaders], album: From Discord}
                """)
            + self.posts,
        )
        return path

    async def doctor(self, send_test: str | None = None) -> tuple[int, str]:
        settings = load_settings(self.write(), self.env)
        out = io.StringIO()
        code = await diagnose(settings, out, send_test_to=send_test)
        return code, out.getvalue()

    def secrets(self) -> list[str]:
        return [self.immich.api_key, fd.TOKEN, self.hook.rsplit("/", 1)[1]]


@pytest.fixture
async def setup(fake: fd.FakeDiscord, tmp_path: Path) -> AsyncIterator[Setup]:
    async with FakeImmich(api_key="immich-secret-key") as immich:
        immich.add_person("Alice")
        immich.add_person("Bob")
        immich.add_album("From Discord")
        hook = fake.add_webhook(fd.PHOTOS_CHANNEL, name="Photos")
        env = {
            "IMMICH_API_KEY": immich.api_key,
            "DISCORD_TOKEN": fd.TOKEN,
            "GRANDMA_WEBHOOK_URL": hook,
        }
        yield Setup(immich, fake, tmp_path, hook, env)


def line_of(config: Path, text: str) -> int:
    """The 1-based line of the config file that holds ``text`` first."""
    return next(n for n, line in enumerate(config.read_text().splitlines(), 1) if text in line)


def crosses(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("✗")]


async def test_all_green(setup: Setup) -> None:
    code, output = await setup.doctor()
    assert code == 0, output
    assert crosses(output) == []
    ticks = [line for line in output.splitlines() if line.startswith("✓")]
    for expected in (
        "Immich answers at",
        "Immich 2.7.5 is a supported version",
        "Immich accepts the API key",
        "allows watching for new photos",
        "allows /immich upload",
        "allows adding uploads to an album given by name",
        "allows /immich person",
        "person 'Alice' is Immich person",
        "person 'Bob' is Immich person",
        "upload album 'From Discord' exists",
        "state.path",
        "target 'stdout' prints",
        "the Discord bot logs in as",
        "target 'family': the bot can post pictures in #photos",
        "target 'grandma': webhook 'Photos' posts to channel",
    ):
        assert any(expected in line for line in ticks), (expected, output)
    assert output.rstrip().endswith(f"all {len(ticks)} checks passed")
    assert not any(secret in output for secret in setup.secrets())
    assert setup.discord.messages == []  # checking posts nothing


async def test_lines_follow_the_config_order(setup: Setup) -> None:
    """People and targets in the order the file names them, not sorted, not bot first."""
    setup.people = "[Bob, Alice]"
    setup.targets = textwrap.dedent("""\
        stdout: {console: true}
        grandma: {webhook_url: "${GRANDMA_WEBHOOK_URL}"}
        family: {channel_id: "CHANNEL"}
        """)
    code, output = await setup.doctor()
    assert code == 0, output
    lines = output.splitlines()

    def where(text: str) -> int:
        [index] = [i for i, line in enumerate(lines) if text in line]
        return index

    assert where("person 'Bob'") < where("person 'Alice'")
    assert where("target 'stdout'") < where("target 'grandma'") < where("target 'family'")


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (
            "wrong key",
            [
                "✗ Immich rejected the API key ({url} answered 401) -> check immich.api_key; "
                "create a "
                "key in Immich: Account settings > API keys"
            ],
        ),
        (
            "key lacking person.read",
            [
                "✗ the API key lacks person.read, needed for finding people by name -> tick "
                "person.read on the key (Immich: Account settings > API keys), or create a new key "
                "with them and set immich.api_key",
                "✗ the API key lacks person.read, needed for /immich person -> tick person.read on "
                "the "
                "key (Immich: Account settings > API keys), or create a new key with them and set "
                "immich.api_key",
            ],
        ),
        (
            "unknown person",
            [
                "✗ {config}:{line}: rules[0].people.any[1]: no person called 'Dave' in Immich "
                "-> name the person in Immich (People > the face > add a name), or correct the "
                "name in the config"
            ],
        ),
        (
            "missing channel",
            [
                "✗ target 'family' (channel 123456789012345678): the channel does not exist or the "
                "bot "
                "is not in its server -> check channel_id and invite the bot"
            ],
        ),
        (
            "channel without Attach Files",
            [
                "✗ target 'family' (channel {channel}): the bot lacks Attach Files in #no-files -> "
                "it "
                "needs View Channel, Send Messages, Embed Links and Attach Files (Discord: the "
                "channel's "
                "settings > Permissions, allow them for the bot or its role)"
            ],
        ),
        (
            "deleted webhook",
            [
                "✗ target 'grandma': Discord does not know this webhook (404 Unknown Webhook): it "
                "was "
                "deleted or its URL is wrong -> create a webhook (Discord: the channel's settings "
                "> "
                "Integrations > Webhooks > New Webhook > Copy Webhook URL) and put its URL in the "
                "target's webhook_url"
            ],
        ),
    ],
)
async def test_each_breakage_is_one_cross_naming_the_fix(
    setup: Setup, breakage: str, expected: list[str]
) -> None:
    if breakage == "wrong key":
        setup.env["IMMICH_API_KEY"] = "not-the-key"
    elif breakage == "key lacking person.read":
        setup.immich.permissions = list(ALL_BUT_PERSON_READ)
    elif breakage == "unknown person":
        setup.people = "[Alice, Dave]"
    elif breakage == "missing channel":
        setup.channel = 123456789012345678
    elif breakage == "channel without Attach Files":
        setup.channel = setup.discord.add_channel("no-files", deny=fd.ATTACH_FILES)
    else:
        setup.discord.delete_webhook(setup.hook)
    code, output = await setup.doctor()
    assert code == 1
    assert crosses(output) == [
        e.format(
            url=setup.immich.url,
            channel=setup.channel,
            config=setup.tmp / "config.yaml",
            line=line_of(setup.tmp / "config.yaml", "Dave") if "Dave" in e else 0,
        )
        for e in expected
    ], output
    assert output.rstrip().endswith("checks failed")
    assert not any(secret in output for secret in [*setup.secrets(), "not-the-key"])


@pytest.mark.parametrize("target", ["family", "grandma", "stdout"])
async def test_send_test_posts_one_labelled_message(setup: Setup, target: str) -> None:
    code, output = await setup.doctor(send_test=target)
    assert code == 0, output
    posted = setup.discord.messages_in(fd.PHOTOS_CHANNEL)
    if target == "stdout":
        assert posted == []
        assert '"test": true, "target": "stdout"' in output
    else:
        assert len(posted) == 1
        assert (
            posted[0]
            .payload["content"]
            .startswith(f"Test message from immich-sidecar doctor: target {target!r} works.")
        )
        assert posted[0].payload["allowed_mentions"]["parse"] == []
    assert "✓ test message p" in output


async def test_send_test_to_an_unknown_target_fails(setup: Setup) -> None:
    code, output = await setup.doctor(send_test="nowhere")
    assert code == 1
    assert "✗ no target called 'nowhere' -> pick one of: family, grandma, stdout" in output


async def test_the_command_line_runs_doctor_and_log_level_may_follow(setup: Setup) -> None:
    config = setup.write()
    env = {**os.environ, **setup.env, "FAKE_DISCORD_URL": setup.discord.base_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.run_sidecar",
        "doctor",
        "-c",
        str(config),
        "--log-level",
        "warning",
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out + err).decode()
    assert out.decode().startswith(f"checking {config}\n✓ Immich answers at")
    assert b"INFO" not in err  # --log-level after the command took effect


async def test_immich_that_does_not_answer_names_the_url_tried(setup: Setup) -> None:
    url = setup.immich.url
    settings = load_settings(setup.write(), setup.env)
    await setup.immich.stop()
    out = io.StringIO()
    code = await diagnose(settings, out)
    output = out.getvalue()
    assert code == 1
    first = crosses(output)[0]
    assert first.startswith(f"✗ Immich does not answer at {url} (")
    assert "-> check immich.url" in first and "http://localhost:2283" in first


def test_version_and_state_checks() -> None:
    from sidecar.doctor.immich import version_check
    from sidecar.doctor.state import state_check
    from sidecar.immich.models import ServerVersion

    assert version_check(ServerVersion(3, 2, 0)).ok
    assert not version_check(ServerVersion(1, 132, 3)).ok
    assert version_check(ServerVersion(4, 0, 0)).fix == "upgrade immich-discord-sidecar"
    blocked = Path("/proc/version/data/state.db")  # under a file: nothing can be made there
    assert not state_check(blocked).ok
    assert state_check(blocked).line.startswith(f"state.path {blocked}: cannot create it in")


# ---------------------------------------------------------------------------- every name run checks


ALBUM_RULE = textwrap.dedent("""\
    - name: holiday
      albums: {any: [Holiday]}
      targets: [stdout]
    """)
POST_PEOPLE = textwrap.dedent("""\
    posts:
      - name: birthdays
        kind: birthdays
        cron: "0 8 * * *"
        targets: [stdout]
        people: {any: [Alice, Carol]}
    """)


async def test_an_unknown_album_of_a_rule_is_one_cross(setup: Setup) -> None:
    setup.immich.add_album("Holiday 2026")
    setup.more_rules = ALBUM_RULE
    code, output = await setup.doctor()
    assert code == 1, output
    config = setup.tmp / "config.yaml"
    assert crosses(output) == [
        f"✗ {config}:{line_of(config, '[Holiday]')}: rules[1].albums.any[0]: no album called "
        "'Holiday' in Immich (albums: 'Holiday 2026'); an album of that name may exist but not "
        "be visible to this key's user (owned by someone else and not shared with them) -> "
        "create the album in Immich or share it with the key's user, or correct the name in the "
        "rule"
    ], output


async def test_an_album_of_another_user_not_shared_is_one_cross_that_says_why(
    setup: Setup,
) -> None:
    other = setup.immich.add_user("Grandpa")
    album = setup.immich.add_album("Holiday", owner=other)  # not shared with the key's user
    setup.more_rules = ALBUM_RULE
    code, output = await setup.doctor()
    assert code == 1, output
    [cross] = crosses(output)
    assert "no album called 'Holiday' in Immich" in cross
    assert "not be visible to this key's user (owned by someone else and not shared" in cross

    setup.immich.share_album(album, [setup.immich.key_user_id])  # shared now: it resolves
    code, output = await setup.doctor()
    assert code == 0, output
    assert f"✓ album 'Holiday' is Immich album {album}" in output


async def test_an_unknown_post_person_is_one_cross(setup: Setup) -> None:
    setup.posts = POST_PEOPLE
    code, output = await setup.doctor()
    assert code == 1, output
    config = setup.tmp / "config.yaml"
    assert crosses(output) == [
        f"✗ {config}:{line_of(config, 'Carol')}: posts[0].people.any[1]: no person called "
        "'Carol' in Immich -> name the person in Immich (People > the face > add a name), or "
        "correct the name in the config"
    ], output


async def test_names_are_checked_in_config_order(setup: Setup) -> None:
    setup.immich.add_album("Holiday")
    setup.immich.add_person("Carol")
    setup.more_rules = ALBUM_RULE
    setup.posts = POST_PEOPLE
    code, output = await setup.doctor()
    assert code == 0, output
    names = [
        line.split(" is Immich")[0].split(" exists")[0]
        for line in output.splitlines()
        if " is Immich person " in line or " is Immich album " in line or "upload album" in line
    ]
    assert names == [
        "✓ person 'Alice'",
        "✓ person 'Bob'",
        "✓ album 'Holiday'",
        "✓ person 'Carol'",  # Alice of the post was checked above, once
        "✓ upload album 'From Discord'",
    ]


async def test_passes_once_a_run_has_made_the_state_file(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sidecar.app import Sidecar

    config = setup.write()
    for name, value in setup.env.items():
        monkeypatch.setenv(name, value)
    sidecar = Sidecar(config, stdout=io.StringIO())
    await sidecar.start()
    await sidecar.stop()
    state = setup.tmp / "data" / "state.db"
    assert state.is_file()
    code, output = await setup.doctor()
    assert code == 0, output
    assert f"✓ state.path {state} exists and is writable" in output
    assert f"✓ state file {state} belongs to Immich user 'Admin', the key's user" in output


async def test_a_state_file_of_another_user_is_one_cross_naming_reset_state(setup: Setup) -> None:
    from sidecar.engine.store.database import Store
    from sidecar.engine.store.owner import OWNER_KEY, StateOwner

    state = setup.tmp / "data" / "state.db"
    store = Store.open(state)
    anna = StateOwner("8c0b5f4e-0000-4000-8000-000000000001", "Anna", "http://old-nas:2283")
    store.set_meta(OWNER_KEY, anna.to_json())
    store.close()
    code, output = await setup.doctor()
    assert code == 1
    assert crosses(output) == [
        f"✗ state file {state} belongs to Immich user 'Anna' ({anna.user_id}) at "
        f"http://old-nas:2283, but the API key is user 'Admin' ({setup.immich.key_user_id}) at "
        f"{setup.immich.url} -> run `immich-sidecar run --reset-state` to move the old file "
        "aside and start a new one (or set state.path to a file of this user's own)"
    ], output


def test_state_check_of_an_existing_file(tmp_path: Path) -> None:
    from sidecar.doctor.state import state_check
    from sidecar.engine.store.database import Store

    state = tmp_path / "state.db"
    Store.open(state).close()  # a file without execute bits, as SQLite makes it
    assert state_check(state).ok, state_check(state).render()
    os.chmod(state, 0o444)
    if not os.access(state, os.W_OK):  # root may write a read-only file anyway
        assert state_check(state).line == f"state.path {state}: the file is not writable"


async def test_bot_channels_get_a_line_when_discord_cannot_be_reached(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    import discord

    # Nothing listens there: the login fails as it does without a network.
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{free_port()}/api/v10")
    code, output = await setup.doctor()
    assert code == 1
    assert crosses(output) == [
        "✗ could not reach Discord (ClientConnectorError) -> check the network, then run doctor "
        "again",
        f"✗ target 'family' (channel {fd.PHOTOS_CHANNEL}): not checked, the bot is not connected "
        "to Discord -> fix the Discord connection above, then run doctor again",
    ], output


async def test_the_command_line_prints_no_discord_log_among_its_lines(setup: Setup) -> None:
    config = setup.write()
    env = {**os.environ, **setup.env, "FAKE_DISCORD_URL": setup.discord.base_url}
    env.pop("SIDECAR_LOG_LEVEL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.run_sidecar",
        "doctor",
        "-c",
        str(config),
        cwd=REPO,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,  # as a terminal shows them: one stream
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "static token" not in text and " INFO " not in text, text
    assert all(line[:1] in ("✓", "c", "a") for line in text.splitlines()), text


async def test_a_shared_links_target_without_the_permission_is_one_cross(setup: Setup) -> None:
    """``links: shared`` needs ``sharedLink.create``: doctor names it (the run falls back to
    links into Immich, said once)."""
    setup.immich.permissions = [p for p in REQUIRED_PERMISSIONS if p != "sharedLink.create"]
    setup.targets = setup.targets.replace(
        'family: {channel_id: "CHANNEL"}', 'family: {channel_id: "CHANNEL", links: shared}'
    )
    code, output = await setup.doctor()
    assert code == 1, output
    assert crosses(output) == [
        "✗ the API key lacks sharedLink.create, needed for shared links -> tick "
        "sharedLink.create on the key (Immich: Account settings > API keys), or create a new key "
        "with them and set immich.api_key"
    ], output
    setup.immich.permissions.append("sharedLink.create")
    code, output = await setup.doctor()
    assert "✓ the API key allows shared links (sharedLink.create)" in output, output
