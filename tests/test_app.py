"""The app in-process against the fake Immich: reload details, dry-run, and the demo."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from sidecar.app import Sidecar
from sidecar.engine.dry_run import dry_run
from tests.e2e_harness import REPO, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout, hook]
    """)
HOOK = "hook: {webhook_url: 'http://127.0.0.1:9/api/webhooks/1/x'}"  # nothing listens there


@pytest.fixture
async def immich(monkeypatch):
    async with FakeImmich() as fake:
        monkeypatch.setenv("IMMICH_API_KEY", fake.api_key)
        fake.alice = fake.add_person("Alice")  # type: ignore[attr-defined]
        yield fake


def config(immich: FakeImmich, tmp_path: Path, **kw) -> Path:
    path = tmp_path / "config.yaml"
    kw.setdefault("rules", RULES)
    kw.setdefault("targets", "stdout: {console: true}\n" + HOOK)
    write_config(
        path, immich_url=immich.url, state=tmp_path / "state.db", metrics_port=free_port(), **kw
    )
    return path


async def test_reload_reschedules_drops_removed_targets_and_keeps_the_others(immich, tmp_path):
    path = config(immich, tmp_path)
    sidecar = Sidecar(path, stdout=io.StringIO())
    await sidecar.start()
    try:
        asset = immich.add_asset(created_at=datetime.now(UTC), people=[immich.alice])
        for _ in range(200):  # bounded: the first polls queue it for both targets
            if len(sidecar.store.rows()) == 2:
                break
            await asyncio.sleep(0.02)
        console_sink = sidecar._sinks["stdout"]
        config(
            immich,
            tmp_path,
            interval="5s",
            targets="stdout: {console: true}",
            rules=RULES.replace("[stdout, hook]", "[stdout]"),
        )
        assert await sidecar.reload()
        assert sidecar._scheduler is not None
        assert sidecar._scheduler.get_job("poll").trigger.interval == timedelta(seconds=5)
        assert sidecar._sinks["stdout"] is console_sink  # unchanged target: same sink
        rows = {r.target: r for r in sidecar.store.rows()}
        assert rows["hook"].state == "failed"
        assert "target removed" in (rows["hook"].last_error or "")
        assert rows["stdout"].asset_id == asset
        assert not await sidecar.reload()  # same content: nothing to do
    finally:
        await sidecar.stop()


async def test_reload_with_an_unknown_person_keeps_the_running_rules(immich, tmp_path, caplog):
    path = config(immich, tmp_path)
    sidecar = Sidecar(path, stdout=io.StringIO())
    await sidecar.start()
    try:
        config(immich, tmp_path, rules=RULES.replace("[Alice]", "[Alicia]"))
        assert not await sidecar.reload()
        assert sidecar.settings.rules[0].people.any == ("Alice",)
        assert any("no person called 'Alicia' in Immich" in r.getMessage() for r in caplog.records)
        registry = sidecar.metrics.registry
        assert registry.get_sample_value("immich_sidecar_config_last_reload_successful") == 0
    finally:
        await sidecar.stop()


async def test_start_and_reload_lines_count_one_rule_and_one_target_in_the_singular(
    immich, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="sidecar")
    one = RULES.replace("[stdout, hook]", "[stdout]")
    path = config(immich, tmp_path, targets="stdout: {console: true}", rules=one)
    sidecar = Sidecar(path, stdout=io.StringIO())
    await sidecar.start()
    try:
        config(immich, tmp_path, targets="stdout: {console: true}", rules=one, interval="5s")
        assert await sidecar.reload()
    finally:
        await sidecar.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert any("started: 1 rule, 1 target, polling" in line for line in lines), lines
    assert "config reloaded: 1 rule, 1 target" in lines


async def test_a_sidecar_without_a_bot_exports_no_discord_connected_series(immich, tmp_path):
    # Exported at 0, it would fire ImmichSidecarDiscordDisconnected for every webhook- or
    # console-only install.
    sidecar = Sidecar(config(immich, tmp_path), stdout=io.StringIO())
    await sidecar.start()
    try:
        assert sidecar._http is not None
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{sidecar._http.port}/metrics")).text
    finally:
        await sidecar.stop()
    assert "immich_sidecar_build_info{" in text
    assert "immich_sidecar_discord_connected" not in text


async def test_dry_run_prints_what_would_be_sent_and_stores_nothing(immich, tmp_path):
    path = config(immich, tmp_path)
    hit = immich.add_asset(
        created_at=datetime.now(UTC) - timedelta(hours=2),
        people=[immich.alice],
        file_name="beach.jpg",
    )
    immich.add_asset(created_at=datetime.now(UTC) - timedelta(hours=2), file_name="other.jpg")
    out = io.StringIO()
    code = await asyncio.to_thread(dry_run, path, 24 * 3600.0, out)
    assert code == 0
    text = out.getvalue()
    assert "kids -> stdout, hook: beach.jpg (IMAGE" in text
    assert "because Alice recognised" in text
    assert f"https://photos.example.test/photos/{hit}" in text
    assert "other.jpg" not in text
    assert text.rstrip().endswith(" examined, 1 match, 2 deliveries would be sent")
    assert not (tmp_path / "state.db").exists()


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 2, 0)], ids=["immich-2.7", "immich-3.2"])
async def test_dry_run_lists_an_asset_once_per_rule_whatever_the_version(
    version, tmp_path, monkeypatch
):
    """Before 3.2 a poll searches once per watched person: an asset showing two of them comes
    back twice, and the dry run must still list it once per rule."""
    async with FakeImmich(version=version) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        alice, bob = immich.add_person("Alice"), immich.add_person("Bob")
        when = datetime.now(UTC) - timedelta(hours=1)
        for name, people in (
            ("alice.jpg", [alice]),
            ("bob.jpg", [bob]),
            ("both.jpg", [alice, bob]),
            ("nobody.jpg", []),
        ):
            immich.add_asset(created_at=when, people=people, file_name=name)
        rules = textwrap.dedent("""\
            - name: kids
              people: {any: [Alice, Bob]}
              targets: [stdout]
            - name: bob
              people: {any: [Bob]}
              targets: [stdout]
            """)
        path = config(immich, tmp_path, rules=rules, targets="stdout: {console: true}")
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 24 * 3600.0, out) == 0
    lines = out.getvalue().splitlines()
    assert sum("kids -> stdout: both.jpg" in line for line in lines) == 1
    assert sum("bob -> stdout: both.jpg" in line for line in lines) == 1
    assert lines[-1] == "3 assets examined, 5 matches, 5 deliveries would be sent"


async def test_a_hidden_person_can_be_named_in_a_rule(immich, tmp_path, capsys):
    """Immich's person search leaves hidden people out unless asked for them."""
    immich.add_person("Dave", hidden=True)
    path = config(immich, tmp_path, rules=RULES.replace("[Alice]", "[Dave]"))
    out = io.StringIO()
    assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0, capsys.readouterr().err
    assert out.getvalue().rstrip().endswith("0 matches, 0 deliveries would be sent")
    [lookup] = immich.api_requests("GET", "/api/search/person")
    assert lookup.query == {"name": "Dave", "withHidden": "true"}


@pytest.mark.e2e
@pytest.mark.serial  # the demo takes ports 2283 and 9187 when they are free
def test_demo_shows_notifications_on_a_fresh_machine():
    """`make demo` runs `python -m tests.demo`: it must work without Immich or Discord."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.demo", "--seconds", "16"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) >= 2, result.stdout + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
