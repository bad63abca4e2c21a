"""``discord.ingest`` in the config: read into settings, said by check-config, and every mistake
refused at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.config.ingest_checks import render_description, template_problem
from sidecar.config.loader import load_settings
from sidecar.config.model import IngestChannel
from tests.config_helpers import ENV, VALID, write_config

TOKEN_LINE = "  token: ${DISCORD_TOKEN}\n"  # line 5; ingest starts at line 6


def with_ingest(block: str, text: str = VALID) -> str:
    assert TOKEN_LINE in text
    return text.replace(TOKEN_LINE, TOKEN_LINE + block, 1)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def test_ingest_is_read_with_the_upload_roles_as_default(in_tmp: Path, capsys) -> None:
    text = with_ingest(
        "  commands:\n    upload: {allowed_roles: [family]}\n"
        "  ingest:\n"
        '    - channel_id: "900000000000000033"\n'
        "    - {channel_id: 900000000000000034, album: Party, allowed_roles: [guests],"
        ' description: "{member} at the party"}\n'
    )
    settings = load_settings(write_config(in_tmp, text))
    assert settings.discord.ingest == (
        IngestChannel(900000000000000033, None, ("family",), "Uploaded by {member} in #{channel}"),
        IngestChannel(900000000000000034, "Party", ("guests",), "{member} at the party"),
    )
    assert main(["check-config", "config.yaml"]) == 0
    out = capsys.readouterr().out
    assert "discord.ingest: 2 channels (900000000000000033, 900000000000000034)" in out
    assert "Privileged Gateway Intents > Message Content Intent" in out


@pytest.mark.parametrize(
    ("block", "prefix", "fragment"),
    [
        (
            '  ingest:\n    - {channel_id: "900000000000000033", allowed_roles: [a], albm: x}\n',
            "7: discord.ingest[0].albm",
            "'albm' is not allowed here (did you mean 'album'?)",
        ),
        (
            "  ingest:\n    - {channel_id: general, allowed_roles: [a]}\n",
            "7: discord.ingest[0].channel_id",
            "expected a Discord id",
        ),
        (
            '  ingest:\n    - {channel_id: "900000000000000033"}\n',
            "7: discord.ingest[0]",
            "nobody may upload here",
        ),
        (
            "  ingest:\n"
            '    - {channel_id: "900000000000000033", allowed_roles: [a]}\n'
            '    - {channel_id: "900000000000000033", allowed_roles: [a]}\n',
            "8: discord.ingest[1].channel_id",
            "channel 900000000000000033 is already listed at discord.ingest[0]",
        ),
        (
            "  ingest:\n"
            '    - {channel_id: "900000000000000033", allowed_roles: [a],'
            ' description: "by {member.id}"}\n',
            "7: discord.ingest[0].description",
            "unknown placeholder {member.id}; the known ones are {member}, {channel}",
        ),
    ],
    ids=["unknown-key", "not-an-id", "no-roles", "twice", "bad-placeholder"],
)
def test_ingest_mistakes_name_file_line_and_key(
    in_tmp: Path, capsys, block: str, prefix: str, fragment: str
) -> None:
    write_config(in_tmp, with_ingest(block))
    assert main(["check-config", "config.yaml"]) == 2
    err = capsys.readouterr().err
    matching = [line for line in err.splitlines() if line.startswith(f"config.yaml:{prefix}: ")]
    assert any(fragment in line for line in matching), err


def test_ingest_without_the_bot_is_refused(in_tmp: Path, capsys) -> None:
    text = VALID.replace(TOKEN_LINE, '  ingest: [{channel_id: "900000000000000033"}]\n')
    text = text.replace('  family: {channel_id: "123456789012345678"}\n', "")
    text = text.replace("targets: [family, stdout]", "targets: [stdout]")
    write_config(in_tmp, text)
    assert main(["check-config", "config.yaml"]) == 2
    assert "config.yaml:5: discord.ingest: ingest needs the bot: set discord.token" in (
        capsys.readouterr().err
    )


def test_description_templates() -> None:
    assert render_description("Uploaded by {member} in #{channel}", "Ann {x}", "uploads") == (
        "Uploaded by Ann {x} in #uploads"
    )
    assert template_problem("{{literal}} by {member}") is None
    assert template_problem("{0}") is not None
    assert "literal braces" in (template_problem("by {member") or "")
