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
from sidecar.doctor import diagnose
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
                """),
            extra=textwrap.dedent("""\
                discord:
                  token: ${DISCORD_TOKEN}
                  commands:
                    upload: {allowed_roles: [uploaders], album: From Discord}
                """),
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
                "✗ the API key lacks person.read, needed for watching for new photos -> tick "
                "person.read on the key (Immich: Account settings > API keys), or create a new key "
                "with "
                "them and set immich.api_key",
                "✗ the API key lacks person.read, needed for /immich person -> tick person.read on "
                "the "
                "key (Immich: Account settings > API keys), or create a new key with them and set "
                "immich.api_key",
            ],
        ),
        (
            "unknown person",
            [
                "✗ no person called 'Dave' in Immich -> name the person in Immich (People > the "
                "face > "
                "add a name), or correct the name in the rule"
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
        e.format(url=setup.immich.url, channel=setup.channel) for e in expected
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
    from sidecar.doctor import state_check, version_check
    from sidecar.immich.models import ServerVersion

    assert version_check(ServerVersion(3, 2, 0)).ok
    assert not version_check(ServerVersion(1, 132, 3)).ok
    assert version_check(ServerVersion(4, 0, 0)).fix == "upgrade immich-discord-sidecar"
    blocked = Path("/proc/version/data/state.db")  # under a file: nothing can be made there
    assert not state_check(blocked).ok
    assert state_check(blocked).line.startswith(f"state.path {blocked}: cannot create it in")
