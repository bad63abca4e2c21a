"""``doctor`` knows the people-link keys: member names in Immich, the claims channel, and the
key permissions of claims, spotted DMs and the Favourite button."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.doctor.runner import diagnose
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.test_doctor import crosses

pytestmark = pytest.mark.slow  # each test logs a bot in to the fake Discord

EVERYTHING_BUT_ASSET_UPDATE = (
    "asset.read",
    "asset.view",
    "person.read",
    "person.statistics",
    "asset.upload",
    "memory.read",
)


async def doctor(tmp: Path, immich: FakeImmich, *, member: str, channel: int) -> tuple[int, str]:
    path = tmp / "config.yaml"
    write_config(
        path,
        immich_url=immich.url,
        state=tmp / "state.db",
        metrics_port=free_port(),
        targets="spotted: {discord_dm: members}",
        rules="- name: kids\n  people: {any: [Alice]}\n  targets: [spotted]",
        extra=textwrap.dedent(f"""\
            discord:
              token: ${{DISCORD_TOKEN}}
              members: {{{member}: "123456789012345678"}}
              members_approvers: ["{fd.MEMBER_ROLE}"]
              members_channel: "{channel}"
              favourite_roles: [family]
            """),
    )
    settings = load_settings(path, {"IMMICH_API_KEY": immich.api_key, "DISCORD_TOKEN": fd.TOKEN})
    out = io.StringIO()
    code = await diagnose(settings, out)
    return code, out.getvalue()


async def test_members_all_green(fake, tmp_path) -> None:
    async with FakeImmich() as immich:
        immich.add_person("Alice")
        code, output = await doctor(tmp_path, immich, member="alice", channel=fd.UPLOADS_CHANNEL)
    assert code == 0, output
    for expected in (
        "✓ the API key allows /immich claim and members (person.read)",
        "✓ the API key allows spotted DMs (asset.view, person.read)",
        "✓ the API key allows the Favourite button (asset.update)",
        "✓ discord.members: 'alice' is linked to Discord member 123456789012345678",
        f"✓ discord.members_channel ({fd.UPLOADS_CHANNEL}): the bot can post claims for "
        "approval in #uploads",
    ):
        assert expected in output, output


async def test_members_breakages_are_crosses_naming_the_fix(fake, tmp_path) -> None:
    async with FakeImmich(permissions=EVERYTHING_BUT_ASSET_UPDATE) as immich:
        immich.add_person("Alice")
        code, output = await doctor(tmp_path, immich, member="Alise", channel=fd.READ_ONLY_CHANNEL)
    assert code == 1
    wrong = crosses(output)
    assert any("lacks asset.update, needed for the Favourite button" in line for line in wrong)
    assert any(
        "discord.members: no person called 'Alise' in Immich (similar: 'Alice')" in line
        for line in wrong
    ), output
    assert any("lacks View Channel or Send Messages in #announcements" in line for line in wrong), (
        output
    )
