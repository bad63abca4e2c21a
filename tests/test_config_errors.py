"""Broken config files: exit 2 and `file:line: path: message` lines, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError
from sidecar.config.yamlfile.source import MAX_FILE_BYTES
from tests.config_helpers import ENV, SECRETS, VALID, write_config


def _alias_bomb() -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _replace(old: str, new: str) -> str:
    assert old in VALID
    return VALID.replace(old, new, 1)


# (id, config text, expected "line: where: " prefix after the file name, message fragment)
CASES = [
    (
        "bad-yaml",
        _replace("interval: 1h30m", "interval: [1h"),
        "7: invalid YAML",  # the line of the '[' left open, not the next line PyYAML stops at
        "line 7: the '[' here is not closed with ']', or a ',' is missing (line 8 comes first)",
    ),
    (
        "wrong-type",
        _replace("1h30m", "{a: 1}"),
        "7: poll.interval",
        "expected a duration like 30s, 2m or 48h, got a mapping",
    ),
    (
        "duration-without-unit",
        _replace("1h30m", "5"),
        "7: poll.interval",
        "expected a duration like 30s, 2m or 48h, got a number: add a unit, e.g. 5s (seconds) "
        "or 5m (minutes)",
    ),
    (
        "unknown-key",
        _replace("  interval: 1h30m", "  intervall: 2m"),
        "7: poll.intervall",
        "'intervall' is not allowed here (did you mean 'interval'?)",
    ),
    (
        "unknown-top-level-key",
        VALID + "rulez: []\n",
        "21: rulez",
        "'rulez' is not allowed here (did you mean 'rules'?)",
    ),
    (
        "undefined-target",
        _replace("[family, stdout]", "[family, famly]"),
        "15: rules[0].targets[1]",
        "'famly' is not a defined target (did you mean 'family'?)",
    ),
    (
        "missing-env-var",
        _replace("${IMMICH_API_KEY}", "${NOT_SET_ANYWHERE}"),
        "3: immich.api_key",
        "environment variable NOT_SET_ANYWHERE is not set",
    ),
    (
        "bad-duration",
        _replace("1h30m", "2 minutes"),
        "7: poll.interval",
        "expected a duration like 30s, 2m or 48h, got '2 minutes'",
    ),
    ("zero-interval", _replace("1h30m", "0m"), "7: poll.interval", "must be longer than 0s"),
    ("rules-not-a-list", VALID.split("rules:")[0] + "rules: {}\n", "12: rules", "list"),
    (
        "duplicate-rule-name",
        _replace("- name: grandma", "- name: kids"),
        "16: rules[1].name",
        "rule name 'kids' is already used by rules[0]",
    ),
    (
        "bot-target-without-token",
        _replace("discord:\n  token: ${DISCORD_TOKEN}\n", ""),
        "7: targets.family.channel_id",
        "needs the bot: set discord.token",
    ),
    (
        "api-key-and-api-key-file",
        _replace("  api_key: ${IMMICH_API_KEY}\n", "  api_key: x\n  api_key_file: key.txt\n"),
        "4: immich.api_key_file",
        "api_key and api_key_file are both set",
    ),
    (
        "neither-api-key-nor-file",
        _replace("  api_key: ${IMMICH_API_KEY}\n", ""),
        "1: immich",
        "needs one of api_key, api_key_file or accounts",
    ),
    (
        "unreadable-api-key-file",
        _replace("  api_key: ${IMMICH_API_KEY}\n", "  api_key_file: missing-key.txt\n"),
        "3: immich.api_key_file",
        "cannot read secret file missing-key.txt: No such file or directory",
    ),
    (
        "missing-required-key",
        _replace("  url: http://immich-server:2283/api/\n", ""),
        "1: immich",
        "missing required key 'url'",
    ),
    (
        "asset-type-enum",
        _replace("[IMAGE]", "[IMAGE, PHOTO]"),
        "18: rules[1].asset_types[1]",
        "expected one of IMAGE, VIDEO, AUDIO, OTHER",
    ),
    (
        "empty-people-filter",
        _replace("{any: [Alice, Bob]}", "{}"),
        "14: rules[0].people",
        "needs at least one of any, all or none",
    ),
    (
        "duplicate-key",
        _replace("  interval: 1h30m", "  interval: 1h30m\n  interval: 2m"),
        "8: poll.interval",
        "duplicate key 'interval'",
    ),
    ("not-a-mapping", "- immich\n- rules\n", "1: (top level)", "expected a mapping"),
    ("empty-file", "", "1: (top level)", "the file is empty"),
    ("only-comments", "# nothing yet\n", "1: (top level)", "the file is empty"),
    ("alias-bomb", _alias_bomb(), "1: structure", "more than 100000 values"),
    ("self-alias", "a: &x [*x]\n", "1: structure", "an alias refers to itself"),
    ("deep-nesting", "a: " + "[" * 5000 + "]" * 5000 + "\n", "1: structure", "nested more"),
    ("tabs", _replace("  url:", "\turl:"), "2: invalid YAML", "indent with spaces, not tabs"),
    (
        "python-tag",
        _replace("1h30m", "!!python/object:os.system x"),
        "7: poll.interval",
        "unsupported YAML tag",
    ),
    ("two-documents", VALID + "---\na: 1\n", "21: invalid YAML", "expected a single document"),
    (
        "malformed-reference",
        _replace("${IMMICH_API_KEY}", "${IMMICH API}"),
        "3: immich.api_key",
        "malformed ${...}",
    ),
    (
        "listen-address",
        VALID + "metrics: {listen: 'localhost:99999'}\n",
        "21: metrics.listen",
        "expected host:port",
    ),
    (
        "bad-target-name",
        _replace("  stdout: {console", "  std out: {console"),
        "11: targets['std out']",
        "is not a valid name",
    ),
    (
        "max-per-message",
        _replace(
            "    targets: [grandma]", "    targets: [grandma]\n    batching: {max_per_message: 11}"
        ),
        "20: rules[1].batching.max_per_message",
        "must be at most 10",
    ),
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "prefix", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_broken_config_names_file_line_and_path(
    in_tmp: Path, capsys: pytest.CaptureFixture[str], text: str, prefix: str, fragment: str
) -> None:
    write_config(in_tmp, text)

    assert main(["check-config", "config.yaml"]) == 2

    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    matching = [line for line in err.splitlines() if line.startswith(f"config.yaml:{prefix}: ")]
    assert matching, err
    assert any(fragment in line for line in matching), err
    assert not any(secret in err for secret in SECRETS)


def test_non_utf8_bytes_point_at_their_line(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(in_tmp, b"immich:\n  url: http://x\n  api_key: caf\xe9\n")

    assert main(["check-config", "config.yaml"]) == 2

    assert capsys.readouterr().err.startswith("config.yaml:3: encoding: not valid UTF-8")


def test_missing_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config", "config.yaml"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config.yaml: no config file there. ")
    # How to name another file, and how to make one.
    for words in ("-c PATH", "SIDECAR_CONFIG", "immich-sidecar init", "config/config.example.yaml"):
        assert words in err


def test_directory_instead_of_file(in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (in_tmp / "conf.d").mkdir()
    assert main(["check-config", "conf.d"]) == 2
    assert capsys.readouterr().err == "conf.d: cannot read: it is a directory\n"


def test_huge_file_is_refused_without_parsing(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(in_tmp, VALID + "#" * MAX_FILE_BYTES)
    assert main(["check-config", "config.yaml"]) == 2
    assert "file too large" in capsys.readouterr().err


def test_all_problems_are_reported_sorted_by_line(tmp_path: Path) -> None:
    text = (
        _replace("1h30m", "soon")
        .replace("[family, stdout]", "[famly, stdout]")
        .replace("[IMAGE]", "[PHOTO]")
    )
    text = "colour: blue\n" + text
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)

    lines = [problem.line for problem in caught.value.problems]
    assert lines == [1, 8, 16, 19]
    assert [problem.where for problem in caught.value.problems] == [
        "colour",
        "poll.interval",
        "rules[0].targets[0]",
        "rules[1].asset_types[0]",
    ]
    assert str(caught.value).count("\n") == 3


def test_invalid_webhook_url_is_not_echoed(tmp_path: Path) -> None:
    secret_ish = "ftp://discord.example/api/webhooks/1/do-not-print-me"
    path = write_config(tmp_path, VALID)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {**ENV, "GRANDMA_WEBHOOK_URL": secret_ish})

    (line,) = caught.value.lines()
    assert line.endswith(
        "10: targets.grandma.webhook_url: expected an http:// or https:// webhook URL"
    )
    assert "do-not-print-me" not in line


def test_secret_file_problems_name_the_file_not_the_content(tmp_path: Path) -> None:
    (tmp_path / "hook.txt").write_text("not-a-url-but-secret-0004\n")
    (tmp_path / "key.txt").write_text("  \n")
    text = _replace("${IMMICH_API_KEY}", "ignored").replace(
        "  api_key: ignored\n", "  api_key_file: key.txt\n"
    )
    text = text.replace('webhook_url: "${GRANDMA_WEBHOOK_URL}"', "webhook_url_file: hook.txt")
    path = write_config(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)

    assert caught.value.lines() == [
        f"{path}:3: immich.api_key_file: secret file key.txt is empty",
        f"{path}:10: targets.grandma.webhook_url_file: "
        "secret file hook.txt does not hold an http:// or https:// URL",
    ]
    assert "secret-0004" not in str(caught.value)
