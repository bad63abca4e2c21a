"""Scheduled posts end to end: the real ``immich-sidecar run`` process with a post scheduled
every minute, against the fake Immich on 127.0.0.1 (3.x shapes: ``for`` is a plain date).

The process runs through ``tests.fakes.run_sidecar`` with ``FAKE_CRON_SECONDS``: the minute's
job fires every few seconds, so that its two runs (before and after a restart) take seconds,
not two real minutes; the five fields, the job and every run are the product's own."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

POSTS = """\
timezone: UTC
posts:
  - name: memories
    kind: memories
    cron: "* * * * *"
    targets: [stdout]
  - name: birthdays
    kind: birthdays
    cron: "* * * * *"
    targets: [stdout]
    max_pictures: 1
"""
FIRES_EVERY = 5  # seconds (FAKE_CRON_SECONDS); more often costs CPU: a run reads the day's fires
FIRED_BY = 20.0  # seconds by which the job must have fired (a slow start included)


class CronInSeconds(SidecarProcess):
    MODULE = "tests.fakes.run_sidecar"


async def test_posts_every_minute_are_sent_once_and_not_again_after_a_restart(tmp_path):
    today = datetime.now(UTC).date()
    async with FakeImmich(version=(3, 1, 0)) as immich:
        alice = immich.add_person("Alice", birth_date=today.replace(year=today.year - 7))
        taken = datetime(today.year - 3, today.month, min(today.day, 28), 10, tzinfo=UTC)
        if (taken.month, taken.day) != (today.month, today.day):
            pytest.skip("today has no day of the same number three years ago")
        memory = immich.add_asset(taken_at=taken, created_at=taken, people=[alice])
        immich.run_memory_job(today)
        config, port = tmp_path / "config.yaml", free_port()
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=port,
            rules="- name: all\n  targets: [stdout]",
            extra=POSTS,
        )
        env = {"IMMICH_API_KEY": immich.api_key, "FAKE_CRON_SECONDS": f"*/{FIRES_EVERY}"}
        sidecar = CronInSeconds(config, env, port)
        await sidecar.start()
        try:

            def posted() -> list[dict[str, object]]:
                return [n for n in sidecar.notifications() if n.get("post")]

            await sidecar.wait_until(lambda: len(posted()) == 2, "the two posts", limit=FIRED_BY)
            texts = sorted(str(n["text"]) for n in posted())
            assert texts == sorted(
                [f"📅 3 years ago today ({today.year - 3}): 1 photo", "🎂 Alice turns 7 today"]
            )
            assert {n["asset_id"] for n in posted()} == {memory}
        finally:
            assert await sidecar.stop() == 0

        again = CronInSeconds(config, env, port)
        await again.start()
        try:
            # The every-minute job fires again: already done for today.
            await again.wait_until(
                lambda: any("already done for" in line for line in again.stderr),
                "a run skipped as already done",
                limit=FIRED_BY,
            )
            assert [n for n in again.notifications() if n.get("post")] == []
            assert (
                await again.metric(
                    "immich_sidecar_post_runs_total", 'post="memories",result="sent"'
                )
                == 0
            )
        finally:
            assert await again.stop() == 0
