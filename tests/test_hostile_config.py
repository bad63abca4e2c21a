"""Hostile config files: generated documents (valid and mutated) from the schema's shape, and
hand-written nasty files that tests/test_config_errors.py does not cover. Every case either
loads or fails with ``file:line: path: message`` lines; never another exception, never a hang."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.config.yamlfile.source import MAX_FILE_BYTES
from tests.config_helpers import ENV, SECRETS, VALID, write_config

LINE = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+): (?P<where>[^\n]+?): (?P<message>[^\n]+)$")

# --------------------------------------------------------------- documents from the schema shape

names = st.from_regex(r"[a-z][a-z0-9_-]{0,12}", fullmatch=True)
durations = st.one_of(
    st.from_regex(r"[0-9]{1,4}(s|m|h|d)", fullmatch=True),
    st.sampled_from(["0s", "1h30m", "2 minutes", "-5m", "", "forever", "9" * 30 + "h"]),
)
snowflakes = st.from_regex(r"[1-9][0-9]{16,18}", fullmatch=True)
person_lists = st.lists(
    st.sampled_from(["Alice", "Bob", "Carol", "Ünïcødé", "x" * 300]),
    min_size=1,
    max_size=3,
    unique=True,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    target_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    targets = {
        name: draw(
            st.sampled_from(
                [
                    {"console": True},
                    {"webhook_url": "${GRANDMA_WEBHOOK_URL}"},
                    {"channel_id": draw(snowflakes)},
                ]
            )
        )
        for name in target_names
    }
    rule_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    rules = []
    for name in rule_names:
        rule: dict[str, Any] = {
            "name": name,
            "targets": draw(
                st.lists(st.sampled_from(target_names), min_size=1, max_size=2, unique=True)
            ),
        }
        people = draw(
            st.dictionaries(st.sampled_from(["any", "all", "none"]), person_lists, max_size=2)
        )
        if people:
            rule["people"] = people
        if draw(st.booleans()):
            rule["asset_types"] = draw(
                st.lists(
                    st.sampled_from(["IMAGE", "VIDEO", "AUDIO", "OTHER"]), min_size=1, unique=True
                )
            )
        rules.append(rule)
    doc: dict[str, Any] = {
        "immich": {
            "url": draw(st.sampled_from(["http://immich:2283", "https://x/api/"])),
            "api_key": "${IMMICH_API_KEY}",
        },
        "discord": {"token": "${DISCORD_TOKEN}"},
        "poll": draw(
            st.dictionaries(
                st.sampled_from(["interval", "lookback", "settle", "backfill"]),
                durations,
                max_size=4,
            )
        ),
        "targets": targets,
        "rules": rules,
    }
    if draw(st.booleans()):
        doc["metrics"] = {
            "listen": draw(
                st.sampled_from(["0.0.0.0:9187", "[::]:9187", "host:0", "host", ":80", "a:65536"])
            )
        }
    return doc


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@st.composite
def mutated(draw: st.DrawFn) -> Any:
    doc = draw(documents())
    for _ in range(draw(st.integers(0, 4))):
        paths = [p for p in _paths(doc) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "unknown_key"]))
        if action == "replace":
            parent[path[-1]] = draw(junk)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=20))] = draw(junk)
    return doc


def assert_loads_or_clean_error(path: Path) -> None:
    try:
        result = load_settings(path, ENV)
    except ConfigError as error:
        lines = error.lines()
        assert lines, "a ConfigError without a problem"
        for line in lines:
            match = LINE.match(line)
            assert match, f"not file:line: path: message: {line!r}"
            assert match["file"] == str(path)
            assert int(match["line"]) >= 1
        text = str(error)
        assert not any(secret in text for secret in SECRETS), text
        assert "Traceback" not in text
    else:
        assert isinstance(result, Settings)


FUZZ = settings(
    max_examples=150,
    deadline=2000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.mark.slow
@FUZZ
@given(documents())
def test_generated_documents_load_or_fail_cleanly(doc: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), yaml.safe_dump(doc, allow_unicode=True))
        assert_loads_or_clean_error(path)


@pytest.mark.slow
@FUZZ
@given(mutated())
def test_mutated_documents_load_or_fail_cleanly(doc: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), yaml.safe_dump(doc, allow_unicode=True))
        assert_loads_or_clean_error(path)


@FUZZ
@given(
    st.text(
        st.characters(blacklist_categories=("Cc", "Cs"), whitelist_characters="\n\t "), max_size=300
    )
)
def test_random_text_after_a_valid_prefix_loads_or_fails_cleanly(tail: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = write_config(Path(tmp), VALID[: len(VALID) // 2] + tail)
        assert_loads_or_clean_error(path)


def test_a_valid_generated_document_really_loads(tmp_path: Path) -> None:
    # The generator is not only producing errors: its simplest document loads.
    doc = {
        "immich": {"url": "http://immich:2283", "api_key": "${IMMICH_API_KEY}"},
        "targets": {"out": {"console": True}},
        "rules": [{"name": "r", "targets": ["out"]}],
    }
    settings_ = load_settings(write_config(tmp_path, yaml.safe_dump(doc)), ENV)
    assert [r.name for r in settings_.rules] == ["r"]


# --------------------------------------------------------------- hand-written hostile files


def _merge_bomb() -> str:
    lines = ["a0: &a0 {" + ", ".join(f"k{i}: {i}" for i in range(10)) + "}"]
    for level in range(1, 12):
        refs = ", ".join(f"*a{level - 1}" for _ in range(9))
        lines.append(f"a{level}: &a{level} {{<<: [{refs}], x{level}: 1}}")
    return "\n".join(lines) + "\n"


def _block_nesting(depth: int) -> str:
    return "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)) + f"{'  ' * depth}v\n"


HOSTILE: list[tuple[str, bytes, str | None]] = [
    # (id, file bytes, a fragment of the expected error, or None when the file must load)
    ("utf8-bom", b"\xef\xbb\xbf" + VALID.encode(), None),
    ("crlf", VALID.replace("\n", "\r\n").encode(), None),
    ("utf16", VALID.encode("utf-16"), "not valid UTF-8"),
    ("latin1-key", b"immich:\n  \xe9t\xe9: 1\n", "not valid UTF-8"),
    ("block-nesting", _block_nesting(200).encode(), "nested more"),
    ("merge-bomb", _merge_bomb().encode(), "structure"),
    (
        "many-anchors",
        (
            "\n".join(f"a{i}: &x{i} [*x{i - 1}]" if i else "a0: &x0 [1]" for i in range(150)) + "\n"
        ).encode(),
        "aliases",
    ),
    ("one-megabyte-line", ("x: " + "y" * (MAX_FILE_BYTES - 20) + "\n").encode(), "'x'"),
    (
        "one-megabyte-comment",
        (VALID + "#" + "c" * (MAX_FILE_BYTES - len(VALID) - 10) + "\n").encode(),
        None,
    ),
    ("over-one-megabyte", b"x: " + b"y" * MAX_FILE_BYTES, "file too large"),
    # PyYAML allows implicit keys of at most 1024 characters: a located YAML error is right.
    ("very-long-key", (VALID + "k" * 200_000 + ": 1\n").encode(), "21: invalid YAML"),
    (
        "very-long-rule-name",
        VALID.replace("- name: kids", "- name: " + "n" * 100_000).encode(),
        "rules[0].name",
    ),
    ("tab-in-value", VALID.replace("1h30m", "1h\t30m").encode(), "config.yaml:7: "),
    ("control-chars", VALID.replace("1h30m", '"\\x1b[31m1h\\x07"').encode(), "poll.interval"),
    ("lone-surrogate-elsewhere", (VALID + 'x: "\\udfff"\n').encode(), "'x' is not allowed"),
    ("rtl-override-key", (VALID + "\u202erules: x\n").encode(), "is not allowed here"),
    ("key-is-a-list", (VALID + "[a, b]: 1\n").encode(), "a key must be plain text"),
    ("set-tag", VALID.replace("1h30m", "!!set {a, b}").encode(), "poll.interval"),
    ("binary-tag", VALID.replace("1h30m", "!!binary aGVsbG8=").encode(), "poll.interval"),
    ("timestamp", VALID.replace("1h30m", "2024-01-01T00:00:00Z").encode(), "poll.interval"),
    ("env-in-key", (VALID + "${IMMICH_API_KEY}: 1\n").encode(), "is not allowed here"),
    ("directive-only", b"%YAML 1.1\n---\n", "empty"),
]


# Once product bugs (fixed): a character YAML forbids got no line, a 5000-digit integer and an
# echoed lone surrogate each led to a traceback.
FIXED_BUGS = [
    pytest.param(
        VALID.replace("1h30m", "1h\x0030m").encode(), "7: invalid YAML", id="nul-byte-in-value"
    ),
    pytest.param(b"immich:\n  url: \x00\n", "2: invalid YAML", id="nul-byte"),
    pytest.param(VALID.replace("1h30m", "1h\x1f").encode(), "7: invalid YAML", id="unit-separator"),
    pytest.param(VALID.replace("1h30m", "9" * 5000).encode(), "7: poll.interval", id="huge-int"),
    pytest.param(
        VALID.replace("1h30m", '"\\ud800"').encode(), "7: poll.interval", id="lone-surrogate-echoed"
    ),
]


@pytest.mark.parametrize(
    ("data", "fragment"), [pytest.param(*c[1:], id=c[0]) for c in HOSTILE] + FIXED_BUGS
)
def test_hostile_file_loads_or_fails_with_a_located_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
    fragment: str | None,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    path = write_config(tmp_path, data)

    code = main(["check-config", "config.yaml"])

    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert not any(secret in out + err for secret in SECRETS)
    if fragment is None:
        assert code == 0, err
        assert isinstance(load_settings(path, ENV), Settings)
        return
    assert code == 2
    assert all(len(line) < 1000 for line in err.splitlines()), "an error line echoes the file"
    # A YAML mistake shows its line (masked, cut short) and a caret under it: "  7 | ...".
    shown = [line for line in err.splitlines() if re.match(r"^ +\d* \| ", line)]
    lines = [line for line in err.splitlines() if line not in shown]
    assert lines and all(line.startswith("config.yaml") for line in lines), err
    assert any(fragment in line for line in lines), err
    located = r"^config\.yaml: " if fragment == "file too large" else r"^config\.yaml:\d+: "
    assert all(re.match(located, line) for line in lines), err


def test_crlf_and_bom_keep_the_line_numbers(tmp_path: Path) -> None:
    text = "\ufeff" + VALID.replace("1h30m", "soon").replace("\n", "\r\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, text), ENV)
    assert [(p.line, p.where) for p in caught.value.problems] == [(7, "poll.interval")]
