"""Scheduled posts with several Immich accounts, in-process against the fake Immich: each
account's memories of the day merged into one post, each picture once; birthdays of the person
of the same name across accounts celebrated once."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from sidecar.app import Sidecar
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.test_posts import BIRTHDAYS, MEMORIES, NINE, TODAY, Clock, lines, wait_for


@pytest.fixture(params=[(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def immich(request, monkeypatch):
    async with FakeImmich(version=request.param) as fake:
        monkeypatch.setenv("DAD_KEY", "dad-key")
        monkeypatch.setenv("MUM_KEY", "mum-key")
        yield fake


def household(immich: FakeImmich, tmp_path: Path, posts: str) -> tuple[str, str, Path]:
    dad = immich.add_user("Dad", api_key="dad-key")
    mum = immich.add_user("Mum", api_key="mum-key")
    path = tmp_path / "config.yaml"
    write_config(
        path,
        immich_url=immich.url,
        state=tmp_path / "state.db",
        metrics_port=free_port(),
        interval="1h",
        rules="- name: all\n  asset_types: [VIDEO]\n  targets: [stdout]",
        extra=posts,
        accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
    )
    return dad, mum, path


def photo(immich: FakeImmich, owner: str, year: int, day: date = TODAY, people=()) -> str:
    return immich.add_asset(
        owner=owner,
        people=people,
        taken_at=datetime(year, day.month, day.day, 10, tzinfo=UTC),
        created_at=datetime(year, day.month, day.day, 11, tzinfo=UTC),
    )


async def test_both_users_memories_make_one_post_each_picture_once(immich, tmp_path):
    dad, mum, path = household(immich, tmp_path, MEMORIES)
    immich.add_partner(dad, mum)  # Dad's photos in Mum's timeline: still in Dad's memory only
    dads = [photo(immich, dad, 2023), photo(immich, dad, 2020)]
    mums = [photo(immich, mum, 2023)]
    immich.run_memory_job(TODAY)
    out = io.StringIO()
    sidecar = Sidecar(path, stdout=out, clock=Clock(NINE))
    await sidecar.start()
    try:
        await sidecar.posts._fire("memories")  # what the cron job calls
        await wait_for(lambda: len(lines(out)) == 3, "the memories post")
        posted = lines(out)
        assert sorted(p["asset_id"] for p in posted) == sorted(dads + mums)
        # Dad's and Mum's 2023 photos are one year of the one post
        assert {p["text"] for p in posted} == {
            "📅 On this day: 3 years ago (2023) and 6 years ago (2020): 3 photos"
        }
        assert len(sidecar.store.rows()) == 3
    finally:
        await sidecar.stop()


async def test_the_fallback_shows_a_partners_photo_once(immich, tmp_path):
    dad, mum, path = household(immich, tmp_path, MEMORIES)
    immich.add_partner(dad, mum)  # no memory job ran: the fallback searches both timelines
    shared = photo(immich, dad, 2022)
    out = io.StringIO()
    sidecar = Sidecar(path, stdout=out, clock=Clock(NINE))
    await sidecar.start()
    try:
        await sidecar.posts._fire("memories")
        await wait_for(lambda: len(lines(out)) == 1, "the fallback post")
        assert [p["asset_id"] for p in lines(out)] == [shared]
    finally:
        await sidecar.stop()


async def test_one_birthday_for_the_same_person_in_two_accounts(immich, tmp_path):
    dad, mum, path = household(immich, tmp_path, "posts:\n" + BIRTHDAYS)
    dads_alice = immich.add_person("Alice", birth_date="2019-12-01", owner=dad)
    mums_alice = immich.add_person("Alice", birth_date="2019-12-01", owner=mum)
    from_dad = photo(immich, dad, 2021, date(2021, 5, 1), people=[dads_alice])
    from_mum = photo(immich, mum, 2024, date(2024, 5, 1), people=[mums_alice])
    out = io.StringIO()
    sidecar = Sidecar(path, stdout=out, clock=Clock(datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC)))
    await sidecar.start()
    try:
        await sidecar.posts._fire("birthdays")
        await wait_for(lambda: len(lines(out)) == 2, "the birthday post")
        posted = lines(out)
        assert {p["text"] for p in posted} == {"🎂 Alice turns 7 today"}
        assert sorted(p["asset_id"] for p in posted) == sorted([from_dad, from_mum])
    finally:
        await sidecar.stop()
