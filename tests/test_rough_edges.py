"""The rough edges a newcomer met (issue 24, item 6), each pinned: secret masking, dry-run and
the state file, the refused key, durations past any sane bound, YAML mistakes in plain words,
and the command line's words. (Crons: tests/test_posts.py; the missing config:
tests/test_cli.py and tests/test_config_errors.py.)"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sidecar.app import Sidecar
from sidecar.cli.main import main
from sidecar.cli.parser import build_parser
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Secret
from sidecar.doctor.runner import diagnose
from sidecar.engine.dry_run import dry_run
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichUnavailableError
from sidecar.masking import display_url, mask_secrets
from sidecar.ops.logging import formatter
from sidecar.ops.metrics import Metrics
from tests.config_helpers import ENV, VALID
from tests.config_helpers import write_config as write_text
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich

# -- masking: whole secret values, and a URL's password -------------------------------------


def test_a_short_secret_is_masked_where_it_stands_whole_not_inside_words():
    text = "Name or service not known; key k refused (k); api_key=k"
    assert mask_secrets(text, ["k"]) == (
        "Name or service not known; key ******** refused (********); api_key=********"
    )


def test_credentials_in_urls_are_masked():
    assert display_url("http://user:PASSWORD@immich:2283/api") == (
        "http://user:********@immich:2283/api"
    )
    assert display_url("https://TOKEN@immich.example") == "https://********@immich.example"
    assert display_url("http://immich:2283") == "http://immich:2283"
    line = formatter("text").format(
        logging.LogRecord("x", logging.INFO, "", 0, "at %s", ("http://u:PASSWORD@h/x",), None)
    )
    assert "PASSWORD" not in line and "http://u:********@h/x" in line


async def test_a_one_letter_key_does_not_garble_a_connection_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    client = ImmichClient(
        "http://immich-server:2283",
        Secret("k"),
        Metrics(),
        transport=httpx.MockTransport(refuse),
        max_attempts=1,
    )
    with pytest.raises(ImmichUnavailableError) as caught:
        await client.version()
    await client.aclose()
    assert "Name or service not known" in str(caught.value)
    assert "*" not in str(caught.value)


async def test_doctor_shows_the_immich_url_without_its_password(tmp_path, monkeypatch):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        url = immich.url.replace("http://", "http://family:PASSWORD@")
        path = tmp_path / "config.yaml"
        write_config(
            path, immich_url=url, state=tmp_path / "s.db", rules="[]", metrics_port=free_port()
        )
        settings = load_settings(path)
        out = io.StringIO()
        await diagnose(settings, out)
    text = out.getvalue()
    assert "PASSWORD" not in text
    assert f"Immich answers at {url.replace('PASSWORD', '********')}" in text
    # Links in messages are opened by others: without the URL's user and password.
    plain = load_settings(write_text(tmp_path, VALID.replace("http://", "http://u:PASSWORD@")), ENV)
    assert plain.immich.external_url == "http://immich-server:2283"


def test_a_config_error_never_shows_a_urls_password(tmp_path, capsys):
    text = VALID.replace("url: http://immich-server:2283/api/", 'url: "http://u:PASSWORD@ bad"')
    assert main(["check-config", str(write_text(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "immich.url" in err and "PASSWORD" not in err


# -- dry-run honours the state file -----------------------------------------------------------

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout]
    - name: videos
      asset_types: [VIDEO]
      targets: [stdout]
    - name: trip
      albums: {any: [Trip]}
      targets: [stdout]
    """)


async def test_dry_run_after_run_says_what_was_already_sent_apart(tmp_path, monkeypatch):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        alice = immich.add_person("Alice")
        album = immich.add_album("Trip")
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            rules=RULES,
            metrics_port=free_port(),
            settle="0s",
            backfill="1h",
        )
        sidecar = Sidecar(path, stdout=io.StringIO())
        await sidecar.start()
        try:
            earlier = datetime.now(UTC) - timedelta(minutes=5)
            photo = immich.add_asset(created_at=earlier, people=[alice], file_name="alice.jpg")
            video = immich.add_asset(created_at=earlier, type="VIDEO", file_name="clip.mp4")
            await sidecar.poll_job.run()  # the album's first poll: its baseline (empty)
            added = immich.add_asset(created_at=earlier, file_name="trip.jpg")
            immich.add_to_album(album, [added])
            for _ in range(300):  # bounded: every rule kind delivers once
                await sidecar.poll_job.run()
                if {r.state for r in sidecar.store.rows()} == {"sent"} and len(
                    sidecar.store.rows()
                ) == 3:
                    break
                await asyncio.sleep(0.02)
            assert {(r.rule, r.asset_id) for r in sidecar.store.rows()} == {
                ("kids", photo),
                ("videos", video),
                ("trip", added),
            }
            immich.add_to_album(album, [photo])  # new in the album, and sent before for kids
        finally:
            await sidecar.stop()
        fresh = immich.add_asset(
            created_at=datetime.now(UTC), people=[alice], file_name="new-alice.jpg"
        )
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0
    text = out.getvalue()
    assert "kids -> stdout: new-alice.jpg (IMAGE" in text and fresh in text
    assert "kids -> stdout: alice.jpg (" not in text  # not among what would be sent
    known = text[text.index("already (run sends none again):") :]
    assert "kids -> stdout: alice.jpg: already sent" in known
    assert "videos -> stdout: clip.mp4: already sent" in known
    assert "trip -> stdout: alice.jpg (IMAGE) added to Trip" in text  # new for this rule
    assert (
        text.rstrip()
        .splitlines()[-1]
        .endswith("2 deliveries would be sent; 2 deliveries already sent")
    )


async def test_dry_run_without_a_state_file_shows_every_match_as_new(tmp_path, monkeypatch):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        alice = immich.add_person("Alice")
        immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            rules=RULES.split("- name: videos")[0],
            metrics_port=free_port(),
        )
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0
    assert out.getvalue().rstrip().endswith("1 match, 1 delivery would be sent")
    assert not (tmp_path / "state.db").exists()


# -- a refused key says what to fix ----------------------------------------------------------


async def test_run_with_a_refused_key_says_what_to_fix_once(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="sidecar")
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", "not-the-key")
        path = tmp_path / "config.yaml"
        write_config(
            path, immich_url=immich.url, state=tmp_path / "s.db", rules="[]", interval="1h",
            metrics_port=free_port(),
        )  # fmt: skip
        sidecar = Sidecar(path, stdout=io.StringIO())
        await sidecar.start()
        try:
            await sidecar.poll_job.run()
        finally:
            await sidecar.stop()
    [said] = [r.getMessage() for r in caplog.records if "refused the API key" in r.getMessage()]
    assert "HTTP 401" in said and "not-the-key" not in said
    assert f"Check immich.api_key ({path}:3)" in said
    assert "Account settings > API keys" in said and "restart the sidecar" in said


async def test_a_key_deleted_while_running_is_said_once_with_the_fix(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="sidecar")
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        path = tmp_path / "config.yaml"
        write_config(
            path, immich_url=immich.url, state=tmp_path / "s.db", interval="1h",
            rules=RULES.split("- name: videos")[0], metrics_port=free_port(),
        )  # fmt: skip
        immich.add_person("Alice")
        sidecar = Sidecar(path, stdout=io.StringIO())
        await sidecar.start()
        try:
            await sidecar.poll_job.run()
            immich.revoke_key(immich.api_key)
            for _ in range(3):
                await sidecar.poll_job.run()
            assert any("HTTP 401" in reason for reason in sidecar.readiness())
        finally:
            await sidecar.stop()
    said = [r.getMessage() for r in caplog.records if "refused the API key" in r.getMessage()]
    assert len(said) == 1
    assert not [r for r in caplog.records if "poll failed" in r.getMessage()]


# -- durations past any sane bound -------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "maximum"),
    [
        ("interval", "999999999d", "1d"),
        ("lookback", "9999999d", "30d"),
        ("settle", "25h", "1d"),
        ("backfill", "366d", "365d"),
        ("interval", "9" * 400 + "d", "1d"),  # past any float, past Python's int parsing
    ],
)
def test_a_duration_past_its_maximum_is_a_config_error_naming_key_and_maximum(
    tmp_path, key, value, maximum
):
    text = VALID.replace("  interval: 1h30m", f"  {key}: {value}")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_text(tmp_path, text), ENV)
    [problem] = caught.value.problems
    assert (problem.line, problem.where) == (7, f"poll.{key}")
    assert problem.message.startswith(f"must be at most {maximum} (got ")


def test_fast_poll_durations_have_maxima_too(tmp_path):
    text = VALID.replace("  interval: 1h30m", "  fast: {every: 2h, for: 3d}")
    with pytest.raises(ConfigError) as caught:
        load_settings(write_text(tmp_path, text), ENV)
    assert [(p.where, p.message) for p in caught.value.problems] == [
        ("poll.fast.every", "must be at most 1h (got 2h)"),
        ("poll.fast.for", "must be at most 1d (got 3d)"),
    ]


def test_every_duration_in_the_schema_has_a_maximum_a_default_and_examples():
    from sidecar.config.schema import _validator

    found = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if node.get("$ref") == "#/$defs/duration":
                found.append(where)
                assert {"maxDuration", "default", "examples", "description"} <= set(node), where
            for key, value in node.items():
                walk(value, f"{where}.{key}")

    walk(_validator().schema["properties"], "")
    assert len(found) == 6, found


def test_the_longest_durations_allowed_still_run(tmp_path):
    text = VALID.replace(
        "  interval: 1h30m",
        "  interval: 1d\n  lookback: 30d\n  settle: 1d\n  backfill: 365d\n"
        "  fast: {every: 1h, for: 1d}",
    )
    settings = load_settings(write_text(tmp_path, text), ENV)
    now = datetime.now(UTC)
    assert now - timedelta(seconds=settings.poll.backfill + settings.poll.lookback) < now


# -- the command line ---------------------------------------------------------------------


def test_every_subcommand_has_a_one_line_description(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    commands: dict[str, argparse.ArgumentParser] = dict(subparsers.choices)
    push = next(a for a in commands["push"]._actions if isinstance(a, argparse._SubParsersAction))
    commands.update({f"push {n}": p for n, p in push.choices.items()})
    summaries = {c.dest: c.help for c in subparsers._choices_actions}
    assert set(summaries) == set(subparsers.choices)
    for name, command in commands.items():  # its own --help opens with what it does
        assert command.description, name
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for name, summary in summaries.items():  # one line each in the listing, at 80 columns
        assert summary is not None, name
        assert re.search(rf"^    {re.escape(name)} +{re.escape(summary)}$", listing, re.M), name


def test_dry_run_since_without_a_unit_gets_a_hint(capsys):
    assert main(["dry-run", "--since", "24"]) == 2
    err = capsys.readouterr().err
    assert "24 has no unit: add one, e.g. 24h (hours), 24d (days) or 24m (minutes)" in err
    assert main(["dry-run", "--since", "99999999999999999999d"]) == 2
    assert "longer than" in capsys.readouterr().err


# -- YAML mistakes in plain words, on the right line, shown with a caret ----------------------


def yaml_error(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["check-config", str(write_text(tmp_path, text))]) == 2
    return capsys.readouterr().err.splitlines()


def test_a_key_indented_under_nothing_is_said_as_indentation_with_its_line_shown(tmp_path, capsys):
    text = VALID.replace("    people: {any: [Alice, Bob]}", "   people: {any: [Alice, Bob]}")
    head, *shown = yaml_error(tmp_path, text, capsys)
    assert head == (
        f"{tmp_path / 'config.yaml'}:14: indentation: line 14 is not under any key: it is "
        "indented 3 spaces; indent it 4 to go with 'name' (line 13) or 0 to go with 'rules' "
        "(line 12)"
    )
    assert shown == [
        "  13 |   - name: kids",
        "  14 |    people: {any: [Alice, Bob]}",
        "     |    ^",
    ]


def test_a_key_at_the_level_of_a_list_dash_is_told_where_it_belongs(tmp_path, capsys):
    text = VALID.replace("    asset_types: [IMAGE]", "  asset_types: [IMAGE]")
    head, *_ = yaml_error(tmp_path, text, capsys)
    assert head.endswith(
        ":18: indentation: line 18 is not under any key: it is indented 2 spaces, like the '-' "
        "of the list item on line 16; indent it 4 to go with 'people' (line 17) or 0 to go "
        "with 'rules' (line 12)"
    )


def test_a_key_without_its_colon_is_reported_on_its_own_line_not_the_next(tmp_path, capsys):
    # PyYAML notices only on line 3, where the text of line 2 runs into a ':'.
    text = VALID.replace("  url: http://immich-server", "  url http://immich-server")
    head, *shown = yaml_error(tmp_path, text, capsys)
    assert head.endswith(":2: invalid YAML: line 2: a key needs a ':' after it (key: value)")
    assert shown[-2:] == ["  2 |   url http://immich-server:2283/api/", "    |   ^"]


def test_a_line_indented_under_a_value_is_said_so(tmp_path, capsys):
    text = VALID.replace("  api_key: ${IMMICH_API_KEY}", "    api_key: ${IMMICH_API_KEY}")
    head, *_ = yaml_error(tmp_path, text, capsys)
    assert head.endswith(
        ":3: indentation: line 3 is indented deeper than 'url' (line 2) and reads as more of "
        "its value; indent it like 'url' (line 2)"
    )


def test_an_unclosed_quote_is_reported_where_it_opens_not_past_the_end(tmp_path, capsys):
    text = VALID + '  - name: "last\n'
    head, *shown = yaml_error(tmp_path, text, capsys)
    assert head.endswith(
        ':21: invalid YAML: line 21: the quoted value is never closed; add the closing "'
    )
    assert shown[-2:] == ['  21 |   - name: "last', "     |           ^"]


def test_a_shown_line_masks_secret_values(tmp_path, capsys):
    text = VALID.replace(
        "  api_key: ${IMMICH_API_KEY}", "   api_key: plain-s3cr3t\n  token: other-s3cr3t"
    )
    lines = yaml_error(tmp_path, text, capsys)
    assert "s3cr3t" not in "\n".join(lines)
    assert "  3 |    api_key: ********" in lines
    hook = VALID.replace(
        '  grandma: {webhook_url: "${GRANDMA_WEBHOOK_URL}"}',
        '  grandma: {webhook_url: "https://discord.com/api/webhooks/1/TOKEN"',
    )
    lines = yaml_error(tmp_path, hook, capsys)
    assert "TOKEN" not in "\n".join(lines)
    assert any('webhook_url: "https://discord.com/********' in line for line in lines)
