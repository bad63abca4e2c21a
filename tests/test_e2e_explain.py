"""``immich-sidecar explain`` end to end: the real ``run`` process against the fake Immich and the
fake Discord, and the real ``explain`` process beside it reading the same state file. Each
verdict the issue names is checked by its words."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e_harness import REPO, free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fault_rig import WrappedSidecar

pytestmark = pytest.mark.e2e

RULES = """\
- name: kids
  people: {any: [Alice]}
  targets: [discord]
- name: pair
  people: {all: [Alice, Bob]}
  targets: [discord]
- name: everything
  asset_types: [IMAGE]
  targets: [discord]
"""


async def explain(config: Path, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """``immich-sidecar explain`` as its own process (the fakes keep serving meanwhile)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sidecar",
        "explain",
        *args,
        "-c",
        str(config),
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def block(answer: dict[str, Any], rule: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [b for b in answer["rules"] if b["rule"] == rule]
    assert len(found) == 1
    return found[0]


@pytest.fixture
async def world(tmp_path):
    discord = fd.FakeDiscord()
    await discord.start()
    async with FakeImmich() as immich:
        yield immich, discord, tmp_path
    await discord.stop()


async def test_explain_says_each_verdict_in_its_words(world):
    immich, discord, tmp = world
    alice = immich.add_person("Alice")
    immich.add_person("Bob")
    now = datetime.now(UTC)
    immich.pause_extraction()
    [library] = immich.library_scan(1, created_at=now - timedelta(hours=2))
    archived = immich.add_asset(created_at=now, people=[alice], visibility="archive")
    photo = immich.add_asset(created_at=now, people=[alice], unrecognised_faces=1)
    config = tmp / "config.yaml"
    port = free_port()
    write_config(
        config,
        immich_url=immich.url,
        state=tmp / "state.db",
        rules=RULES,
        targets=f'discord: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}',
        settle="1h",  # a fresh upload waits for it under the rule without people
        backfill="3h",  # the library scan of two hours ago is after the baseline
        metrics_port=port,
        extra="discord:\n  token: ${DISCORD_TOKEN}\n",
    )
    env = {
        "IMMICH_API_KEY": immich.api_key,
        "DISCORD_TOKEN": fd.TOKEN,
        "FAKE_DISCORD_URL": discord.base_url,
    }
    sidecar = WrappedSidecar(config, env, port)
    await sidecar.start()
    try:
        await sidecar.wait_until(
            lambda: any(photo in json.dumps(m.payload) for m in discord.messages),
            "the photo of Alice in Discord",
        )
        await sidecar.wait_for_polls(2)  # the library's unread window is in the state file
        started = time.monotonic()
        code, out, err = await explain(config, env, photo, "--json")
        took = time.monotonic() - started
        assert code == 0, err
        answer = json.loads(out)
        [posted] = block(answer, "kids")["verdicts"]
        [message] = [m for m in discord.messages if photo in json.dumps(m.payload)]
        assert posted["verdict"] == "posted"
        assert posted["target"] == "discord"
        assert posted["at"] is not None
        link = f"https://discord.com/channels/{fd.GUILD_ID}/{fd.PHOTOS_CHANNEL}/{message.id}"
        assert posted["link"] == link
        [pair] = block(answer, "pair")["verdicts"]
        assert pair["verdict"] == "will not post"
        assert pair["reason"].startswith("Bob is not recognised in it (faces: Alice, unnamed ×1)")
        [fresh] = block(answer, "everything")["verdicts"]
        assert fresh["verdict"] == "queued"
        assert fresh["waits_for"] == "settle"
        assert fresh["reason"].startswith("settle until ")
        assert answer["asset"]["faces"] == "faces: Alice, unnamed ×1"

        code, out, err = await explain(config, env, f"https://photos.example.test/photos/{photo}")
        assert code == 0, err
        assert "posted (discord): at " in out and link in out
        assert "will not post: Bob is not recognised in it (faces: Alice, unnamed ×1)" in out
        assert "queued: settle until " in out

        code, out, err = await explain(config, env, library)
        assert code == 0, err
        assert "queued: waiting for metadata: Immich has not extracted it yet" in out
        assert "will not post: Alice is not recognised in it (no faces recognised)" in out

        code, out, err = await explain(config, env, archived)
        assert code == 0, err
        assert "will not post: it is archived (only assets on the timeline are posted)" in out
    finally:
        assert await sidecar.stop() == 0
    print(f"explain of a posted photo: {took:.2f}s (process start included)")


ONE_RULE = "- name: kids\n  people: {any: [Alice]}\n  targets: [stdout]\n"


async def test_explain_refuses_a_bad_argument_and_says_when_immich_is_down(world):
    immich, _discord, tmp = world
    config = tmp / "config.yaml"
    write_config(config, immich_url=immich.url, state=tmp / "state.db", rules=ONE_RULE)
    env = {"IMMICH_API_KEY": immich.api_key}
    immich.add_person("Alice")
    code, _out, err = await explain(config, env, "not-an-asset")
    assert code == 2
    assert "'not-an-asset' is not an asset id or an Immich link to an asset" in err
    code, _out, err = await explain(config, env, "0c2f0000-0000-4000-8000-000000000000")
    assert code == 2
    assert "no configured Immich account can read asset" in err
    asset = immich.add_asset(created_at=datetime.now(UTC))
    down = tmp / "down.yaml"
    closed = f"http://127.0.0.1:{free_port()}"
    write_config(down, immich_url=closed, state=tmp / "s.db", rules=ONE_RULE)
    code, _out, err = await explain(down, env, asset)
    assert code == 1
    assert err.startswith("cannot read Immich: ")
    assert "Traceback" not in err
