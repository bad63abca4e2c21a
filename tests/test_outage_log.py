"""What an Immich outage writes to the log: one line when it starts and one when it ends at
INFO, the per-request retries at DEBUG, and no APScheduler warning per skipped poll."""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap
from pathlib import Path

import stamina
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sidecar.app import Sidecar
from sidecar.ops.logging import SchedulerLog
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich, Faults


async def test_an_outage_is_one_line_and_its_end_another(tmp_path: Path, monkeypatch, caplog):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.add_person("Alice")
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            interval="1h",
            rules=textwrap.dedent("""\
                - name: kids
                  people: {any: [Alice]}
                  targets: [stdout]
                - name: all
                  targets: [stdout]
                """),
        )
        caplog.set_level(logging.DEBUG)
        sidecar = Sidecar(path, stdout=io.StringIO())
        with stamina.set_testing(True, attempts=3):
            await sidecar.start()
            try:
                await sidecar.poll_job.run()
                caplog.clear()
                immich.faults = Faults(rate=1.0, kinds=("503",))
                for _ in range(5):
                    await sidecar.poll_job.run()
                immich.faults = None
                for _ in range(3):
                    await sidecar.poll_job.run()
            finally:
                await sidecar.stop()
    said = [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("sidecar")
        and r.levelno >= logging.INFO
        and r.getMessage() != "sidecar stopped"
    ]
    assert len(said) == 2, said
    (outage_level, outage), (recovery_level, recovery) = said
    assert outage_level == "WARNING"
    assert outage.startswith("poll failed: Immich POST /api/search/metadata: HTTP 503")
    assert (recovery_level, recovery) == ("INFO", "connected to Immich 2.7.5 again")
    retries = [r for r in caplog.records if "; retry " in r.getMessage()]
    assert retries and {r.levelname for r in retries} == {"DEBUG"}  # the detail is kept


async def test_a_poll_skipped_while_the_previous_one_runs_is_not_a_warning(caplog):
    """APScheduler warns at each skipped run ("maximum number of running instances reached");
    the sidecar's scheduler says it at DEBUG, in its own words."""
    caplog.set_level(logging.DEBUG)
    scheduler = AsyncIOScheduler(timezone="UTC", logger=SchedulerLog())
    release = asyncio.Event()
    scheduler.add_job(release.wait, "interval", seconds=0.05, id="poll", max_instances=1)
    scheduler.start()
    try:
        for _ in range(200):  # bounded: a few intervals pass while the first run waits
            if any(r.name == "sidecar.scheduler" for r in caplog.records):
                break
            await asyncio.sleep(0.02)
    finally:
        release.set()
        scheduler.shutdown(wait=False)
    skipped = [r for r in caplog.records if r.name == "sidecar.scheduler"]
    assert skipped, "no run was skipped"
    assert skipped[0].levelname == "DEBUG"
    assert skipped[0].getMessage() == (
        "poll: run skipped, the previous run is still going (Immich slow or retrying)"
    )
    assert not [r for r in caplog.records if "maximum number" in r.getMessage()]
