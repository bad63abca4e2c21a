"""Loading a config file into Settings: mapping, env expansion, secrets, URL and schema facts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from sidecar.config.durations import format_duration, parse_duration
from sidecar.config.loader import load_settings, normalise_base_url
from sidecar.config.model import ASSET_TYPES, Batching, ConfigError, PeopleFilter, Rule, Secret
from sidecar.config.schema import schema_text
from sidecar.targets.console import ConsoleTarget
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.targets.discord.webhook import WebhookTarget
from tests.config_helpers import (
    API_KEY,
    DISCORD_TOKEN,
    ENV,
    EXAMPLE_CONFIG,
    REPO_ROOT,
    SECRETS,
    VALID,
    WEBHOOK_URL,
    write_config,
)

MINIMAL = """\
immich: {url: "http://immich:2283", api_key: "k"}
targets: {out: {console: true}}
rules: [{name: all, targets: [out]}]
"""


def test_valid_config_maps_onto_the_dataclasses(tmp_path: Path) -> None:
    path = write_config(tmp_path, VALID)

    loaded = load_settings(path, ENV)

    assert loaded.source == path
    assert loaded.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.immich.url == "http://immich-server:2283"
    assert loaded.immich.external_url == "http://immich-server:2283"
    assert loaded.immich.api_key.reveal() == API_KEY
    assert loaded.discord.token is not None
    assert loaded.discord.token.reveal() == DISCORD_TOKEN
    assert loaded.poll.interval == 5400.0
    assert loaded.poll.lookback == 48 * 3600.0
    assert dict(loaded.targets) == {
        "family": ChannelTarget("family", 123456789012345678),
        "grandma": WebhookTarget("grandma", Secret(WEBHOOK_URL)),
        "stdout": ConsoleTarget("stdout"),
    }
    assert loaded.rules == (
        Rule(name="kids", targets=("family", "stdout"), people=PeopleFilter(any=("Alice", "Bob"))),
        Rule(
            name="grandma",
            targets=("grandma",),
            people=PeopleFilter(all=("Alice",), none=("Carol",)),
            asset_types=frozenset({"IMAGE"}),
            mention_roles=(222222222222222222, 333),
        ),
    )


def test_minimal_config_takes_every_default(tmp_path: Path) -> None:
    loaded = load_settings(write_config(tmp_path, MINIMAL), {})

    assert loaded.discord.token is None
    assert loaded.discord.upload.max_mb == 100
    assert loaded.discord.person.enabled is True
    assert (loaded.poll.interval, loaded.poll.settle, loaded.poll.backfill) == (120.0, 120.0, 0.0)
    assert str(loaded.state.path) == "/data/state.db"
    assert (loaded.metrics.host, loaded.metrics.port) == ("0.0.0.0", 9187)
    (rule,) = loaded.rules
    assert rule.asset_types == frozenset(ASSET_TYPES)
    assert rule.batching == Batching(max_per_message=10, summary_over=20)
    assert not rule.people.requires_person


def test_example_config_loads_with_its_environment() -> None:
    loaded = load_settings(EXAMPLE_CONFIG, ENV)

    assert loaded.immich.external_url == "https://photos.example.com"
    assert set(loaded.targets) == {"family", "grandma", "stdout"}
    assert [rule.name for rule in loaded.rules] == ["kids", "grandma-sees-the-kids-together"]
    assert loaded.rules[0].batching == Batching(max_per_message=10, summary_over=20)


def test_sections_and_commands_are_read(tmp_path: Path) -> None:
    text = MINIMAL + (
        "discord:\n"
        "  token_file: secrets/token\n"
        "  commands:\n"
        "    upload: {enabled: false, allowed_roles: [Admins, 42], album: Inbox, max_mb: 25}\n"
        "    person: {enabled: false}\n"
        "state: {path: ./state.db}\n"
        "metrics: {listen: '[::]:9100'}\n"
        "poll: {interval: 30s, lookback: 1d, settle: 0s, backfill: 2h}\n"
    )
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(DISCORD_TOKEN + "\n")

    loaded = load_settings(write_config(tmp_path, text), {})

    assert loaded.discord.token == Secret(DISCORD_TOKEN)
    upload = loaded.discord.upload
    assert (upload.enabled, upload.allowed_roles, upload.album, upload.max_mb) == (
        False,
        ("Admins", "42"),
        "Inbox",
        25,
    )
    assert loaded.discord.person.enabled is False
    assert str(loaded.state.path) == "state.db"
    assert (loaded.metrics.host, loaded.metrics.port) == ("::", 9100)
    assert (loaded.poll.interval, loaded.poll.lookback, loaded.poll.settle) == (30.0, 86400.0, 0.0)
    assert loaded.poll.backfill == 7200.0


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("http://immich:2283", "http://immich:2283"),
        ("http://immich:2283/", "http://immich:2283"),
        ("http://immich:2283/api", "http://immich:2283"),
        ("https://example.com/photos/api/", "https://example.com/photos"),
        ("https://example.com/apiary", "https://example.com/apiary"),
    ],
)
def test_immich_url_is_normalised(tmp_path: Path, written: str, expected: str) -> None:
    assert normalise_base_url(written) == expected
    text = MINIMAL.replace("http://immich:2283", written)
    assert load_settings(write_config(tmp_path, text), {}).immich.url == expected


def test_env_expansion_with_defaults_escapes_and_text_around(tmp_path: Path) -> None:
    text = """\
immich:
  url: http://${HOST:-immich}:${PORT:-2283}/api
  api_key: ${KEY}
discord:
  token: pre-$${NOT_EXPANDED}-${KEY}
targets:
  x: {channel_id: "${CHANNEL}"}
rules:
  - {name: "${EMPTY:-fallback}", targets: [x]}
"""
    loaded = load_settings(
        write_config(tmp_path, text), {"PORT": "1234", "KEY": "abc", "EMPTY": "", "CHANNEL": "99"}
    )

    assert loaded.immich.url == "http://immich:1234"
    assert loaded.immich.api_key.reveal() == "abc"
    assert loaded.rules[0].name == "fallback"
    assert loaded.targets["x"] == ChannelTarget("x", 99)
    assert loaded.discord.token == Secret("pre-${NOT_EXPANDED}-abc")


def test_values_from_the_environment_are_not_expanded_again(tmp_path: Path) -> None:
    text = MINIMAL.replace('api_key: "k"', 'api_key: "${KEY}"')
    loaded = load_settings(write_config(tmp_path, text), {"KEY": "x${OTHER}y"})
    assert loaded.immich.api_key.reveal() == "x${OTHER}y"


def test_env_defaults_to_the_process_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIDECAR_TEST_KEY", "from-os-environ")
    text = MINIMAL.replace('api_key: "k"', 'api_key: "${SIDECAR_TEST_KEY}"')
    assert load_settings(write_config(tmp_path, text)).immich.api_key.reveal() == "from-os-environ"


def test_secrets_never_print(tmp_path: Path) -> None:
    loaded = load_settings(write_config(tmp_path, VALID), ENV)

    assert repr(Secret(API_KEY)) == "Secret('********')"
    assert str(Secret(API_KEY)) == "Secret('********')"
    shown = repr(loaded) + str(loaded) + repr(dict(loaded.targets))
    assert not any(secret in shown for secret in SECRETS)


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "rules: [{name: all, targets: [out]}]",
        "x-base: &base {targets: [out], asset_types: [IMAGE]}\n"
        "rules:\n  - {<<: *base, name: one}\n  - {<<: *base, name: two, asset_types: [VIDEO]}\n",
    )
    # x-base is not a known key: anchors must live inside a known section.
    with pytest.raises(ConfigError, match="'x-base' is not allowed here"):
        load_settings(write_config(tmp_path, text), {})

    text = text.replace("x-base: &base {targets: [out], asset_types: [IMAGE]}\n", "").replace(
        "  - {<<: *base, name: one}", "  - &base {name: one, targets: [out], asset_types: [IMAGE]}"
    )
    rules = load_settings(write_config(tmp_path, text), {}).rules
    assert [(r.name, r.asset_types) for r in rules] == [
        ("one", frozenset({"IMAGE"})),
        ("two", frozenset({"VIDEO"})),
    ]


def test_keys_keep_their_written_text(tmp_path: Path) -> None:
    text = MINIMAL.replace("out: {console", "yes: {console").replace("[out]", "['yes']")
    assert set(load_settings(write_config(tmp_path, text), {}).targets) == {"yes"}


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!|>'\"#\t\n ,$%@`"))))
def test_arbitrary_text_gives_settings_or_config_error(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, text)
    try:
        load_settings(path, {})
    except ConfigError as error:
        assert error.problems
        assert all(line.startswith(str(path)) for line in error.lines())


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("2m", 120), ("1h30m", 5400), ("1d", 86400), ("1d1s", 86401), ("0s", 0)],
)
def test_durations_round_trip(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert format_duration(seconds) == text


def test_durations_parse_long_forms_and_format_shortest() -> None:
    assert parse_duration("48h") == 172800
    assert parse_duration("90m") == 5400
    assert format_duration(172800) == "2d"


@pytest.mark.parametrize("text", ["", "5", "2 m", "m", "1m2h", "-1s", "1.5h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(text)


# --- the schema --------------------------------------------------------------------------------


def _objects(schema: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append(schema)
        for value in schema.values():
            found += _objects(value)
    elif isinstance(schema, list):
        for value in schema:
            found += _objects(value)
    return found


def test_schema_is_valid_and_closed() -> None:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    objects = _objects(schema)
    assert len(objects) >= 10
    assert all(obj.get("additionalProperties") is False for obj in objects)
    # targets is a name -> target map, whose values are closed objects themselves
    assert schema["properties"]["targets"]["additionalProperties"] == {"$ref": "#/$defs/target"}


def test_schema_copy_in_config_is_identical() -> None:
    shipped = REPO_ROOT / "sidecar" / "config.schema.json"
    assert (REPO_ROOT / "config" / "config.schema.json").read_bytes() == shipped.read_bytes()


def test_example_config_points_editors_at_the_schema() -> None:
    first_line = EXAMPLE_CONFIG.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./config.schema.json"
