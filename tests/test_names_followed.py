"""Names that change in Immich are followed (issue 28 item 7): the running sidecar looks the
config's names up again every hour (and at a reload), so a person given the same name later, a
rename or a merge changes what a rule watches, and says so once. In-process against the fake
Immich; the hourly job is run by hand (it is the scheduler's ``people-check`` job)."""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.app import Sidecar
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich

RULES = textwrap.dedent("""\
    - name: grandma
      people: {any: [Grandma]}
      targets: [stdout]
    """)


@pytest.fixture
async def immich(monkeypatch) -> AsyncIterator[FakeImmich]:
    async with FakeImmich(version=(3, 1, 0)) as fake:
        monkeypatch.setenv("IMMICH_API_KEY", fake.api_key)
        yield fake


async def running(immich: FakeImmich, tmp_path: Path) -> Sidecar:
    path = tmp_path / "config.yaml"
    write_config(
        path,
        immich_url=immich.url,
        state=tmp_path / "state.db",
        rules=RULES,
        metrics_port=free_port(),
    )
    sidecar = Sidecar(path, stdout=io.StringIO())
    await sidecar.start()
    return sidecar


def polls(sidecar: Sidecar) -> float:
    registry = sidecar.metrics.registry
    return registry.get_sample_value("immich_sidecar_poll_runs_total", {"result": "success"}) or 0


async def after_polls(sidecar: Sidecar, count: int = 2) -> None:
    wanted = polls(sidecar) + count
    for _ in range(500):  # bounded: polls run every second
        if polls(sidecar) >= wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the sidecar did not poll")


def queued(sidecar: Sidecar, asset: str) -> bool:
    return any(row.asset_id == asset for row in sidecar.store.rows())


def said(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records)


async def test_a_person_given_the_same_name_later_is_watched_from_the_hourly_look_up(
    immich, tmp_path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar")
    grandma = immich.add_person("Grandma")
    sidecar = await running(immich, tmp_path)
    try:
        assert sidecar._scheduler is not None
        job = sidecar._scheduler.get_job("people-check")
        assert job.trigger.interval == timedelta(hours=1)
        twin = immich.add_person("Grandma")  # a second face cluster, named the same
        photo = immich.add_asset(created_at=datetime.now(UTC), people=[twin])
        await after_polls(sidecar)
        assert not queued(sidecar, photo)  # not looked up again yet: she is nobody's
        await job.func()
        await after_polls(sidecar)
        assert queued(sidecar, photo)
        assert said(caplog, "people: 'Grandma' names 2 people") == 1
        assert (
            said(caplog, f"people: 'Grandma' now names 'Grandma' {grandma}, 'Grandma' {twin}") == 1
        )
        await job.func()  # nothing changed: nothing more is said
        assert said(caplog, "'Grandma' names 2 people") == 1
        assert said(caplog, "'Grandma' now names") == 1
    finally:
        await sidecar.stop()


async def test_a_rename_and_a_merge_are_followed_and_said(immich, tmp_path, caplog) -> None:
    grandma = immich.add_person("Grandma")
    other = immich.add_person("Grandma Rose")
    sidecar = await running(immich, tmp_path)
    try:
        assert sidecar._scheduler is not None
        job = sidecar._scheduler.get_job("people-check")
        # Grandma's cluster is merged into another one, which is then named Grandma.
        immich.merge_people(grandma, other)
        immich.rename_person(other, "Grandma")
        await job.func()
        assert said(caplog, f"'Grandma' now names 'Grandma' {other} (it named 'Grandma' {grandma})")
        photo = immich.add_asset(created_at=datetime.now(UTC), people=[other])
        await after_polls(sidecar)
        assert queued(sidecar, photo)
        # Renamed to a name the config does not know: the rules keep what they watched, and
        # the next start's refusal is said ahead, once.
        immich.rename_person(other, "Granny")
        await job.func()
        await job.func()
        assert said(caplog, "no person called 'Grandma' in Immich (similar names: 'Granny')") == 1
        assert said(caplog, "the next start refuses the config") == 1
        again = immich.add_asset(created_at=datetime.now(UTC), people=[other])
        await after_polls(sidecar)
        assert queued(sidecar, again)
    finally:
        await sidecar.stop()
