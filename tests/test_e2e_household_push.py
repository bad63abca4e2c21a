"""Push for every account (issue 28 item 1), end to end: the real ``push setup`` command and the
real ``run`` process against the fake Immich 3.1 with two users, each with their own workflow
(a workflow fires for its owner's uploads only)."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_harness import REPO, SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

SECRET = "e2e-household-push-0123456789"
ENV = {"DAD_KEY": "dad-key", "MUM_KEY": "mum-key", "IMMICH_PUSH_SECRET": SECRET}


class Household:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config.yaml"
        self.metrics_port, self.push_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.push_port}/hooks/immich"
        self.dad = immich.add_user("Dad", api_key=ENV["DAD_KEY"])
        self.mum = immich.add_user("Mum", api_key=ENV["MUM_KEY"])
        # settle and interval far away: only a push can deliver within seconds
        write_config(
            self.config,
            immich_url=immich.url,
            state=tmp / "state.db",
            rules="- {name: everything, targets: [stdout]}",
            interval="10m",
            settle="1h",
            metrics_port=self.metrics_port,
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
            extra=(
                f"push:\n  listen: 127.0.0.1:{self.push_port}\n  secret: ${{IMMICH_PUSH_SECRET}}\n"
            ),
        )

    async def push_command(self, action: str) -> tuple[int, list[str]]:
        """``immich-sidecar push setup|status`` as a user runs it (the fake answers meanwhile)."""
        extra = ["--url", self.url] if action == "setup" else []
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", SidecarProcess.MODULE, "push", action, "-c", str(self.config),
            *extra, cwd=REPO, env={**os.environ, **ENV}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return int(proc.returncode or 0), out.decode().splitlines()

    def asset_reads(self, asset_id: str) -> list[int]:
        """The statuses of the sidecar's ``GET /api/assets/{id}`` for this asset."""
        return [
            r.status
            for r in self.immich.requests
            if r.method == "GET" and r.path == f"/api/assets/{asset_id}"
        ]


async def test_push_setup_under_every_account_and_each_push_read_with_its_owners_key(tmp_path):
    async with FakeImmich(version=(3, 1, 0)) as immich:
        home = Household(immich, tmp_path)
        code, first = await home.push_command("setup")
        assert code == 0, first
        assert [line.split(": ", 1)[0] for line in first] == ["account dad", "account mum"]
        assert all("created workflow 'immich-sidecar push'" in line for line in first)
        code, second = await home.push_command("setup")
        assert code == 0 and all("nothing changed" in line for line in second), second
        for user in (home.dad, home.mum):  # one workflow per account, its own
            assert len(immich.workflows.owned_by(user)) == 1
        code, shown = await home.push_command("status")
        assert code == 0 and shown[1::2] == [
            "account dad: no push has arrived yet",
            "account mum: no push has arrived yet",
        ], shown
        assert all(SECRET not in line for line in first + second + shown)

        sidecar = SidecarProcess(home.config, ENV, home.metrics_port)
        await sidecar.start()
        try:
            await sidecar.wait_for_log("push: uploads of dad, mum are pushed")
            await sidecar.wait_for_metric("immich_sidecar_poll_runs_total", 'result="success"', 1)
            mums = immich.add_asset(created_at=datetime.now(UTC), owner=home.mum)
            took = await sidecar.wait_until(lambda: bool(sidecar.delivered(mums)), "push", 2.0)
            assert took <= 2.0
            assert home.asset_reads(mums) == [200]  # read once, with Mum's key (Dad's cannot)
            dads = immich.add_asset(created_at=datetime.now(UTC), owner=home.dad)
            await sidecar.wait_until(lambda: bool(sidecar.delivered(dads)), "push", 2.0)
            assert home.asset_reads(dads) == [200]
            queued = await sidecar.metric("immich_sidecar_push_assets_total", 'result="queued"')
            assert queued == 2
            assert len(sidecar.delivered(mums)) == 1 and len(sidecar.delivered(dads)) == 1
        finally:
            assert await sidecar.stop() == 0
        code, shown = await home.push_command("status")
        assert code == 0, shown
        assert [line.split(": ", 1)[1][:17] for line in shown[1::2]] == ["last push arrived"] * 2
