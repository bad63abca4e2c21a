"""Push end to end: the real ``immich-sidecar run`` process, the fake Immich 3.1 calling it
through a workflow's webhook step, and the console target."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

SECRET = "e2e-push-secret-0123456789"
HEADER = "X-Immich-Sidecar-Secret"
RULES = "- {name: everything, targets: [stdout]}"
QUIET = 1.0  # seconds to wait before concluding that nothing was delivered


class PushWorld:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config.yaml"
        self.state = tmp / "state.db"
        self.metrics_port = free_port()
        self.push_port = free_port()
        self.url = f"http://127.0.0.1:{self.push_port}/hooks/immich"

    def write(self, *, settle: str, interval: str, rules: str = RULES, poll: str = "") -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            interval=interval,
            settle=settle,
            metrics_port=self.metrics_port,
            extra=(
                f"push:\n  listen: 127.0.0.1:{self.push_port}\n  secret: ${{IMMICH_PUSH_SECRET}}\n"
            ),
        )
        if poll:  # more poll settings, e.g. fast: {...}
            self.config.write_text(self.config.read_text().replace("poll:\n", poll, 1))

    def sidecar(self) -> SidecarProcess:
        env = {"IMMICH_API_KEY": self.immich.api_key, "IMMICH_PUSH_SECRET": SECRET}
        return SidecarProcess(self.config, env, self.metrics_port)

    async def workflow(self) -> None:
        async with httpx.AsyncClient(
            base_url=f"{self.immich.url}/api", headers={"x-api-key": self.immich.api_key}
        ) as http:
            answer = await http.post(
                "/workflows",
                json={
                    "name": "immich-sidecar push",
                    "trigger": "AssetMetadataExtraction",
                    "enabled": True,
                    "steps": [
                        {
                            "method": "immich-plugin-core#webhook",
                            "config": {
                                "url": self.url,
                                "method": "POST",
                                "headerName": HEADER,
                                "headerValue": SECRET,
                            },
                        }
                    ],
                },
            )
            assert answer.status_code == 201

    def upload(self) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC))

    async def push(
        self, body: Any = None, *, secret: str = SECRET, content: bytes | None = None
    ) -> int:
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                self.url,
                json=body if content is None else None,
                content=content,
                headers={HEADER: secret},
            )
        assert answer.content == b""
        return answer.status_code


def body_for(asset_id: str) -> dict[str, Any]:
    return {
        "type": "AssetV1",
        "trigger": "AssetMetadataExtraction",
        "data": {"asset": {"id": asset_id}},
    }


async def first_poll(sidecar: SidecarProcess) -> None:
    await sidecar.wait_for_metric("immich_sidecar_poll_runs_total", 'result="success"', 1)


@pytest.fixture
async def world(tmp_path: Path):
    async with FakeImmich(version=(3, 1, 0)) as immich:
        yield PushWorld(immich, tmp_path)


async def test_a_push_delivers_within_two_seconds(world: PushWorld) -> None:
    # settle and interval far away: only the push can deliver this quickly.
    world.write(settle="1h", interval="10m")
    await world.workflow()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await first_poll(sidecar)
        asset = world.upload()  # Immich runs the workflow: AssetMetadataExtraction ~20 ms later
        took = await sidecar.wait_until(lambda: bool(sidecar.delivered(asset)), "push", 2.0)
        assert took <= 2.0
        await asyncio.sleep(QUIET)
        assert len(sidecar.delivered(asset)) == 1
        assert await sidecar.metric("immich_sidecar_push_assets_total", 'result="queued"') == 1
    finally:
        assert await sidecar.stop() == 0


async def test_refused_pushes_and_a_forged_id_deliver_nothing(world: PushWorld) -> None:
    world.write(settle="1h", interval="10m")  # no workflow: only the pushes below
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await first_poll(sidecar)
        asset = world.upload()
        assert await world.push(body_for(asset), secret="wrong-secret-0123456789") == 401
        padded = body_for(asset) | {"padding": "x" * 70_000}
        assert await world.push(body_for(asset), content=str(padded).encode()) == 413
        assert await world.push({"type": "AssetV1", "data": {"asset": asset}}) == 400
        assert await world.push(content=b"\xff\xfe not json") == 400
        forged = str(uuid.uuid4())
        assert await world.push(body_for(forged)) == 202
        await sidecar.wait_for_metric("immich_sidecar_push_assets_total", 'result="unknown"', 1)
        await asyncio.sleep(QUIET)
        assert sidecar.notifications() == []
        counted = {
            result: await sidecar.metric("immich_sidecar_push_requests_total", f'result="{result}"')
            for result in ("unauthorized", "too_large", "malformed", "accepted")
        }
        assert counted == {"unauthorized": 1, "too_large": 1, "malformed": 2, "accepted": 1}
        # The same asset, pushed properly, is delivered: the refusals above were the reason.
        assert await world.push(body_for(asset)) == 202
        await sidecar.wait_until(lambda: bool(sidecar.delivered(asset)), "push", 2.0)
        assert all(SECRET not in line for line in sidecar.stderr)
    finally:
        assert await sidecar.stop() == 0


async def test_a_push_lost_while_down_is_delivered_by_the_next_poll_once(
    world: PushWorld,
) -> None:
    world.write(settle="1s", interval="1s")
    await world.workflow()
    sidecar = world.sidecar()
    await sidecar.start()
    await first_poll(sidecar)
    assert await sidecar.stop() == 0
    asset = world.upload()  # the workflow fires at a sidecar that is not there
    await asyncio.sleep(0.2)
    assert world.immich.workflows.errors  # Immich logged it and will not retry
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await sidecar.wait_for_delivery(asset)
        await sidecar.wait_for_polls(3)
        assert len(sidecar.delivered(asset)) == 1
    finally:
        assert await sidecar.stop() == 0


async def test_a_pushed_and_polled_asset_is_delivered_once(world: PushWorld) -> None:
    world.write(settle="1s", interval="1s")
    await world.workflow()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await first_poll(sidecar)
        asset = world.upload()
        await sidecar.wait_for_delivery(asset)
        await sidecar.wait_for_polls(3)  # each of them sees the asset, now settled
        assert await sidecar.metric("immich_sidecar_push_assets_total", 'result="queued"') == 1
        assert len(sidecar.delivered(asset)) == 1
    finally:
        assert await sidecar.stop() == 0


async def test_a_push_opens_fast_polls_that_find_a_late_face(world: PushWorld) -> None:
    alice = world.immich.add_person("Alice")
    world.write(
        settle="1h",
        interval="10m",
        rules="- {name: alice, people: {any: [Alice]}, targets: [stdout]}",
        poll="poll:\n  fast: {every: 1s, for: 30s}\n",
    )
    await world.workflow()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await first_poll(sidecar)
        asset = world.immich.add_asset(created_at=datetime.now(UTC), unrecognised_faces=1)
        await sidecar.wait_for_metric("immich_sidecar_fast_poll_windows_total", "", 1)
        world.immich.recognise(asset, alice)  # long before the next regular poll (10 min)
        await sidecar.wait_until(lambda: bool(sidecar.delivered(asset)), "fast poll", 5.0)
        assert await sidecar.metric("immich_sidecar_fast_polls_total", 'result="success"') >= 1
    finally:
        assert await sidecar.stop() == 0


async def test_a_push_polls_again_once_settled_for_a_rule_with_none(world: PushWorld) -> None:
    """A rule with ``none:`` waits ``settle`` even when pushed; the push plans one poll for
    then, so the asset is not left waiting for the next regular interval (10 minutes here)."""
    world.immich.add_person("Carol")
    world.write(
        settle="2s",
        interval="10m",
        rules="- {name: no-carol, people: {none: [Carol]}, targets: [stdout]}",
    )
    await world.workflow()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await first_poll(sidecar)
        asset = world.upload()
        took = await sidecar.wait_until(lambda: bool(sidecar.delivered(asset)), "poll", 10.0)
        assert took >= 2.0  # not before settle
        assert len(sidecar.delivered(asset)) == 1
    finally:
        assert await sidecar.stop() == 0
