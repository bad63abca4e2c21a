"""What is generated from the config schema (sidecar/config.schema.json, the one source) is up to
date, the schema documents every key, its defaults are the loader's, and the chart's form of it
takes and refuses what the sidecar takes and refuses."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator, Draft202012Validator

from sidecar.config.durations import parse_duration
from sidecar.config.loader import load_settings
from tests.schemagen import helm
from tests.schemagen.__main__ import main
from tests.schemagen.generated import COMMAND, GENERATED, stale
from tests.schemagen.walk import ROOT, Key, keys, load_schema

SCHEMA = load_schema()
KEYS = list(keys(SCHEMA))
BASE: dict[str, Any] = {
    "immich": {"url": "http://127.0.0.1:2283", "api_key": "k"},
    "targets": {"t": {"console": True}},
}
# What a key inside a list or a map needs around it (the rest of a minimal entry).
ENTRIES: dict[str, Any] = {
    "discord": {},
    "discord.ingest[]": {"channel_id": "123", "allowed_roles": ["r"]},
    "push": {"secret": "s" * 16},
    "rules[]": {"name": "r", "targets": ["t"]},
    "rules[].quiet_hours": {"from": "22:00", "to": "07:00"},
    "posts[]": {"name": "p", "kind": "memories", "cron": "0 9 * * *", "targets": ["t"]},
    "targets.NAME.http": {"url": "https://example.com/hook"},
    "targets.NAME.quiet_hours": {"from": "22:00", "to": "07:00"},
    "immich.accounts.NAME": {"api_key": "k"},
}


# Keys that only Discord targets take (sidecar.targets.presentation): a webhook target around
# them instead of BASE's console one.
DISCORD_TARGET_KEYS = ("layout", "video", "links", "shared_links")
DISCORD_TARGET = {"webhook_url": "https://discord.com/api/webhooks/1/token"}

BY_PATH = {key.path: key for key in KEYS}
_MISSING = object()


def config_with(key: Key, value: Any) -> dict[str, Any]:
    """A minimal valid config with ``value`` at the key's path: one entry per list or map, and
    none of the key's alternatives (``api_key`` goes when ``accounts`` comes)."""
    config = copy.deepcopy(BASE)
    node: Any = config
    parts = key.path.split(".")
    if parts[:2] == ["targets", "NAME"] and parts[2:3] and parts[2] in DISCORD_TARGET_KEYS:
        config["targets"]["t"] = dict(DISCORD_TARGET)
    prefix = ""
    for n, part in enumerate(parts):
        prefix = f"{prefix}.{part}" if prefix else part
        name = part.removesuffix("[]")
        if part == "NAME":
            name = "t" if parts[0] == "targets" else "a"
        here = BY_PATH.get(prefix)
        for other in here.choice if here else ():
            if other != name:
                node.pop(other, None)
        if n == len(parts) - 1:
            node[name] = value
        elif part.endswith("[]"):
            entry = copy.deepcopy(ENTRIES.get(prefix, {}))
            node[name] = [entry]
            node = entry
        else:
            if not isinstance(node.get(name), dict):
                node[name] = copy.deepcopy(ENTRIES.get(prefix, {}))
            node = node[name]
    return config


def config_without(key: Key) -> dict[str, Any]:
    """The same minimal config, without the key."""

    def drop(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: drop(v) for k, v in node.items() if v is not _MISSING}
        if isinstance(node, list):
            return [drop(v) for v in node]
        return node

    result: dict[str, Any] = drop(config_with(key, _MISSING))
    return result


def write(tmp_path: Path, config: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- generated files ---------------------------------------------------------------------


def test_every_generated_file_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert not stale(), f"stale: {', '.join(stale())}; run `{COMMAND}` and commit the result"
    assert main(["--check"]) == 0
    assert capsys.readouterr().out == ""


def test_a_stale_file_is_named_with_the_command_that_fixes_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(GENERATED, "docs/reference/configuration.md", lambda: "something else")
    assert main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "docs/reference/configuration.md is stale: run `make schema`" in out


def test_the_reference_names_every_key_with_its_default_and_example() -> None:
    page = (ROOT / "docs" / "reference" / "configuration.md").read_text()
    for key in KEYS:
        assert f"`{key.path}` {{#{key.anchor}}}" in page
    assert "- **Default**: `interval: 2m`" in page
    assert "- **Examples**: `interval: 5s`, `interval: 10m`" in page
    assert "- **Default**: `claims: approval`" in page


def test_make_schema_is_the_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^schema: venv\n\t\$\(BIN\)/python -m tests\.schemagen$", makefile, re.M)


# --- the schema documents every key, truly ----------------------------------------------------


def test_every_key_has_a_description() -> None:
    missing = [key.path for key in KEYS if not key.schema.get("description")]
    assert not missing, f"add a description to these keys in sidecar/config.schema.json: {missing}"


def test_every_value_key_has_an_example() -> None:
    """Mappings are shown by their keys; every other key shows how it is written."""
    missing = [
        key.path
        for key in KEYS
        if "properties" not in key.schema and not key.schema.get("examples")
    ]
    assert not missing, f"add examples to these keys in sidecar/config.schema.json: {missing}"


@pytest.mark.parametrize("key", KEYS, ids=lambda key: key.path)
def test_examples_and_defaults_are_valid_values_of_their_key(key: Key) -> None:
    validator = Draft202012Validator(SCHEMA)
    for value in [
        *key.schema.get("examples", []),
        *([key.schema["default"]] if "default" in key.schema else []),
    ]:
        config = expanded(config_with(key, value))
        errors = [e.message for e in validator.iter_errors(config)]
        assert not errors, (key.path, value, errors)


@pytest.mark.parametrize(
    "key", [k for k in KEYS if "default" in k.schema], ids=lambda key: key.path
)
def test_a_default_in_the_schema_is_what_the_loader_uses(key: Key, tmp_path: Path) -> None:
    given, left_out = config_with(key, key.schema["default"]), config_without(key)
    if key.path.startswith("discord.ingest[]"):  # ingest channels need the bot
        given["discord"]["token"] = left_out["discord"]["token"] = "x"
    explicit = load_settings(write(tmp_path, given, "a.yaml"))
    implicit = load_settings(write(tmp_path, left_out, "b.yaml"))
    assert replace(implicit, source=explicit.source, content_hash=explicit.content_hash) == explicit


def test_patterns_are_ones_helm_can_compile() -> None:
    """Helm compiles the values schema's patterns with Go's regexp (RE2): no look-around, no
    back-references."""
    text = json.dumps(SCHEMA)
    patterns = re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', text)
    assert patterns
    for pattern in patterns:
        assert not re.search(r"\(\?[=!<]|\\[1-9]", json.loads(f'"{pattern}"')), pattern


@given(st.text(alphabet="0123456789dhms x", max_size=8))
def test_the_duration_pattern_takes_exactly_what_the_loader_parses(text: str) -> None:
    pattern = re.compile(SCHEMA["$defs"]["duration"]["pattern"])
    try:
        parse_duration(text)
        parses = text == text.strip()
    except ValueError:
        parses = False
    assert bool(pattern.search(text)) == parses


# --- the chart's form of it ------------------------------------------------------------------


def chart_config_validator() -> Draft7Validator:
    values = json.loads(helm.VALUES_SCHEMA.read_text())
    Draft7Validator.check_schema(values)
    config = {**values["properties"]["config"], "definitions": values["definitions"]}
    return Draft7Validator(config)


def expanded(node: Any) -> Any:
    """``${VAR}`` read as the sidecar would, from an environment holding a likely value."""
    if isinstance(node, dict):
        return {k: expanded(v) for k, v in node.items()}
    if isinstance(node, list):
        return [expanded(v) for v in node]
    if isinstance(node, str):
        return re.sub(
            r"\$\{(\w+)(?::-([^}]*))?\}",
            lambda m: (
                m[2] or ("https://discord.com/api/webhooks/1/x" if "URL" in m[1] else "s" * 24)
            ),
            node,
        )
    return node


def every_example_config() -> list[dict[str, Any]]:
    return [config_with(key, example) for key in KEYS for example in key.schema.get("examples", [])]


REFUSED = [
    ({"poll": {"lookbak": "2m"}}, "poll"),
    ({"poll": {"interval": "5 minutes"}}, "poll.interval"),
    ({"poll": {"interval": "0s"}}, "poll.interval"),
    ({"timezon": "UTC"}, ""),
    ({"targets": {"t": {"channel_id": "12ab"}}}, "targets.t.channel_id"),
    ({"targets": {"t": {"console": True, "webhook_url": "https://x/y"}}}, "targets.t"),
    ({"rules": [{"name": "r", "targets": ["t"], "asset_types": ["PHOTO"]}]}, "rules.0"),
    ({"posts": [{"name": "p", "kind": "memory", "cron": "* * * * *", "targets": ["t"]}]}, "posts"),
    ({"discord": {"claims": "closed"}}, "discord.claims"),
    ({"push": {"secret": "short"}}, "push.secret"),
    ({"metrics": {"listen": "9187"}}, "metrics.listen"),
]


def test_the_chart_takes_every_config_the_sidecar_takes() -> None:
    sidecar = Draft202012Validator(SCHEMA)
    chart = chart_config_validator()
    configs = [
        yaml.safe_load((ROOT / p).read_text())
        for p in (
            "config/config.example.yaml",
            "config/config.local.yaml",
            "deploy/immich-discord-sidecar/config/config.yaml",
        )
    ]
    for config in [*configs, *every_example_config()]:
        assert not list(sidecar.iter_errors(expanded(config))), config
        assert not [e.message for e in chart.iter_errors(config)], config


@pytest.mark.parametrize(("change", "where"), REFUSED, ids=[str(c) for c, _ in REFUSED])
def test_the_chart_refuses_what_the_sidecar_refuses(change: dict[str, Any], where: str) -> None:
    config = {**copy.deepcopy(BASE), **change}
    assert list(Draft202012Validator(SCHEMA).iter_errors(config))
    errors = list(chart_config_validator().iter_errors(config))
    assert errors
    assert any(".".join(map(str, e.absolute_path)).startswith(where) for e in errors), [
        (list(e.absolute_path), e.message) for e in errors
    ]


def test_the_chart_leaves_what_it_fills_in_and_values_from_the_environment_to_the_sidecar() -> None:
    chart = chart_config_validator()
    configs: list[dict[str, Any]] = [
        {},  # the chart fills in immich.url, the key, a console target
        {"targets": {}, "rules": []},
        {"push": {"header": "X-Secret"}},  # the chart fills in the secret
        {"poll": {"interval": "${POLL_INTERVAL}"}, "discord": {"claims": "${CLAIMS}"}},
        {"targets": {"t": {"channel_id": "${FAMILY_CHANNEL}"}}},
        {"push": {"secret": "${S}"}},
    ]
    for config in configs:
        assert not [e.message for e in chart.iter_errors(config)], config


def test_the_sidecars_own_keywords_are_said_on_the_page_and_left_out_of_the_chart() -> None:
    from tests.schemagen.reference import type_of

    duration = {"$ref": "#/$defs/duration", "maxDuration": "1d", "errorMessage": "too long"}
    resolved = {**SCHEMA["$defs"]["duration"], "maxDuration": "1d"}
    assert type_of(resolved, SCHEMA) == "a duration like 30s, 2m or 48h (at most 1d)"
    form = helm.values_schema(
        {"type": "object", "properties": {"lookback": duration}, "$defs": SCHEMA["$defs"]},
        {"properties": {}},
    )
    assert form["properties"]["config"]["properties"]["lookback"] == {
        "$ref": "#/definitions/config-duration"
    }
