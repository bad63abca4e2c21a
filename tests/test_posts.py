"""Scheduled posts in-process against the fake Immich, with an injected clock (no waiting for
09:00): memories, the fallback, birthdays, digests, exactly once per occasion, make-up at
start, and reload."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import textwrap
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from sidecar.app import Sidecar
from sidecar.config.cron import post_trigger
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError
from sidecar.engine.posts.plan import (
    birthdays_today,
    is_birthday,
    last_fire,
    pick_spread,
    plan_digest,
)
from sidecar.immich.models import Asset, Person, PersonRef
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich

TODAY = date(2026, 12, 1)
NINE = datetime(2026, 12, 1, 9, 0, 5, tzinfo=UTC)

MEMORIES = """\
posts:
  - name: memories
    kind: memories
    cron: "0 9 * * *"
    targets: [stdout]
    max_pictures: 3
"""
BIRTHDAYS = """\
  - name: birthdays
    kind: birthdays
    cron: "0 8 * * *"
    targets: [stdout]
    max_pictures: 2
"""
DIGEST = """\
  - name: weekly
    kind: digest
    cron: "0 18 * * sun"
    targets: [stdout]
    rules: [kids]
"""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=[(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def immich(request, monkeypatch):
    async with FakeImmich(version=request.param) as fake:
        monkeypatch.setenv("IMMICH_API_KEY", fake.api_key)
        # The tests' handles on Alice and Bob ride on the fake itself.
        fake.alice = fake.add_person("Alice", birth_date="2019-12-01")  # type: ignore[attr-defined]
        fake.bob = fake.add_person("Bob", birth_date="2018-06-05")  # type: ignore[attr-defined]
        yield fake


def config(
    immich: FakeImmich, tmp_path: Path, posts: str = MEMORIES, timezone: str = "UTC"
) -> Path:
    path = tmp_path / "config.yaml"
    write_config(
        path,
        immich_url=immich.url,
        state=tmp_path / "state.db",
        metrics_port=free_port(),
        interval="1h",
        rules="- name: kids\n  people: {any: [Alice]}\n  targets: [stdout]",
        extra=f"timezone: {timezone}\n" + posts,
    )
    return path


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def wait_for(condition, what: str) -> None:
    for _ in range(500):  # bounded; counts rounds, not seconds
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def started(path: Path, clock: Clock, out: io.StringIO) -> Sidecar:
    sidecar = Sidecar(path, stdout=out, clock=clock)
    await sidecar.start()
    return sidecar


def past_photos(immich: FakeImmich, *years: int, people=(), day: date = TODAY) -> list[str]:
    return [
        immich.add_asset(
            taken_at=datetime(year, day.month, day.day, 10, tzinfo=UTC),
            created_at=datetime(year, day.month, day.day, 11, tzinfo=UTC),
            people=people,
        )
        for year in years
    ]


# -- memories ---------------------------------------------------------------------------------


async def test_memories_posted_once_at_the_scheduled_minute_one_message_per_year(immich, tmp_path):
    ids = past_photos(immich, 2023, 2023, 2020, people=[immich.alice])
    past_photos(immich, 2022, day=TODAY + timedelta(days=1))  # tomorrow's: not today's memory
    immich.run_memory_job(TODAY)
    clock = Clock(datetime(2026, 12, 1, 8, 59, tzinfo=UTC))
    out = io.StringIO()
    posts = MEMORIES + "    one_message_per_year: true\n"
    sidecar = await started(config(immich, tmp_path, posts=posts), clock, out)
    try:
        assert sidecar.posts.next_runs()["memories"] == datetime(2026, 12, 1, 9, tzinfo=UTC)
        assert sidecar.store.rows() == []  # before 09:00: nothing made up at start
        clock.now = NINE
        await sidecar.posts._fire("memories")  # what the cron job calls
        await wait_for(lambda: len(lines(out)) == 3, "three pictures sent")
        posted = lines(out)
        assert {p["asset_id"] for p in posted} == set(ids)
        texts = sorted({p["text"] for p in posted})
        assert texts == [
            "📅 3 years ago today (2023): 2 photos",
            "📅 6 years ago today (2020): 1 photo",
        ]
        assert all(
            p["post_link"].startswith("https://photos.example.test/memory?id=") for p in posted
        )
        again = await sidecar.posts.run("memories")  # a second fire in the same minute
        assert again.result == "skipped"
        assert len(sidecar.store.rows()) == 3
        assert sidecar.metrics.post_runs.labels(post="memories", result="sent")._value.get() == 1
    finally:
        await sidecar.stop()


async def test_memories_of_several_years_go_out_as_one_message_by_default(immich, tmp_path):
    """Three years on one day: one message (one notification in a family channel), its
    pictures spread over the years, not three messages in a row."""
    newest = past_photos(immich, 2025, 2025, 2025)
    middle = past_photos(immich, 2023)
    oldest = past_photos(immich, 2019, 2019)
    immich.run_memory_job(TODAY)
    out = io.StringIO()
    sidecar = await started(config(immich, tmp_path), Clock(NINE - timedelta(hours=1)), out)
    try:
        sidecar._clock.now = NINE  # type: ignore[attr-defined]
        result = await sidecar.posts.run("memories")
        assert result.result == "sent" and result.messages == 1
        await wait_for(lambda: len(lines(out)) == 3, "one message of three pictures")
        posted = lines(out)
        assert {p["text"] for p in posted} == {
            "📅 On this day: 1 year ago (2025), 3 years ago (2023), and 7 years ago (2019): "
            "6 photos"
        }
        # max_pictures 3: one of each year, the most recent year first.
        first, second, third = (p["asset_id"] for p in posted)
        assert (first in newest, second in middle, third in oldest) == (True, True, True)
        assert len({p["post_link"] for p in posted}) == 1
    finally:
        await sidecar.stop()


async def test_the_fallback_finds_photos_of_this_day_when_immich_has_no_memory(
    immich, tmp_path, caplog
):
    immich.run_memory_job(TODAY)  # ran before the photo arrived: no memory covers it
    photo = past_photos(immich, 2024)[0]
    caplog.set_level(logging.INFO, logger="sidecar.engine.posts.scheduler")
    out = io.StringIO()
    sidecar = await started(config(immich, tmp_path), Clock(NINE - timedelta(hours=1)), out)
    try:
        sidecar._clock.now = NINE  # type: ignore[attr-defined]
        result = await sidecar.posts.run("memories")
        assert result.result == "sent" and result.messages == 1
        await wait_for(lambda: lines(out), "the fallback post")
        (posted,) = lines(out)
        assert posted["asset_id"] == photo
        assert posted["text"] == "📅 2 years ago today (2024): 1 photo"
        assert posted["post_link"] == f"https://photos.example.test/photos/{photo}"
        assert any(
            "no memory in Immich for today; fallback search found 1 year" in r.getMessage()
            for r in caplog.records
        )
    finally:
        await sidecar.stop()


async def test_a_day_without_memories_or_photos_posts_nothing_and_is_not_retried(immich, tmp_path):
    out = io.StringIO()
    sidecar = await started(config(immich, tmp_path), Clock(NINE), out)
    try:
        assert (await sidecar.posts.run("memories")).result in ("nothing", "skipped")
        assert (await sidecar.posts.run("memories")).result == "skipped"
        assert sidecar.store.rows() == []
    finally:
        await sidecar.stop()


# -- birthdays --------------------------------------------------------------------------------


async def test_a_birthday_today_is_posted_with_photos_from_different_years(immich, tmp_path):
    for year in (2021, 2021, 2023, 2025):
        immich.add_asset(
            taken_at=datetime(year, 5, 1, tzinfo=UTC),
            people=[immich.alice],
            created_at=datetime(year, 5, 1, tzinfo=UTC),
        )
    immich.add_asset(
        taken_at=datetime(2024, 5, 1, tzinfo=UTC),
        people=[immich.bob],
        created_at=datetime(2024, 5, 1, tzinfo=UTC),
    )
    out = io.StringIO()
    clock = Clock(datetime(2026, 12, 1, 7, 59, tzinfo=UTC))
    sidecar = await started(config(immich, tmp_path, posts="posts:\n" + BIRTHDAYS), clock, out)
    try:
        clock.now = datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC)
        await sidecar.posts._fire("birthdays")
        await wait_for(lambda: len(lines(out)) == 2, "the birthday post")
        posted = lines(out)
        assert {p["text"] for p in posted} == {"🎂 Alice turns 7 today"}
        years = sorted(p["taken_at"][:4] for p in posted)
        assert years == ["2023", "2025"]  # the two most recent years, one photo each
        assert all("Alice" in p["people"] for p in posted)
        clock.now = datetime(2026, 12, 2, 8, 0, 1, tzinfo=UTC)  # the next day: no birthday
        assert (await sidecar.posts.run("birthdays")).result == "nothing"
        assert len(lines(out)) == 2
    finally:
        await sidecar.stop()


def test_birthdays_only_on_the_day_and_29_february_on_the_28th():
    alice = Person("a", "Alice", birth_date=date(2019, 12, 1))
    leap = Person("l", "Leo", birth_date=date(2020, 2, 29))
    unnamed = Person("u", "", birth_date=date(2019, 12, 1))
    assert birthdays_today([alice, leap, unnamed], TODAY) == [alice]
    assert birthdays_today([alice, leap], date(2026, 12, 2)) == []
    assert is_birthday(date(2020, 2, 29), date(2027, 2, 28))
    assert not is_birthday(date(2020, 2, 29), date(2028, 2, 28))  # a leap year: the 29th


def test_birthday_photos_avoid_last_years_picks_when_others_exist():
    def photo(n: int, year: int) -> Asset:
        return Asset(
            f"p{n}",
            "IMAGE",
            datetime(year, 1, 1, tzinfo=UTC),
            datetime(year, 1, 1, tzinfo=UTC),
            "",
            "timeline",
            False,
            (),
        )

    candidates = [photo(1, 2020), photo(2, 2021), photo(3, 2022), photo(4, 2022)]
    picked = pick_spread(candidates, 2, avoid={"p3", "p4"}, seed="x")
    assert {a.id for a in picked} == {"p1", "p2"}
    assert len(pick_spread(candidates, 4, avoid={"p3", "p4"})) == 4  # too few: reuse


# -- digest -----------------------------------------------------------------------------------


def test_a_digest_summarises_the_periods_matches():
    def shot(n: int, *names: str) -> Asset:
        return Asset(
            f"a{n}",
            "IMAGE",
            datetime(2026, 11, 28, n, tzinfo=UTC),
            None,
            "",
            "timeline",
            False,
            tuple(PersonRef(name.lower(), name) for name in names),
        )

    start, end = datetime(2026, 11, 22, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC)
    plan = plan_digest(
        {
            "kids": [shot(1, "Alice"), shot(2, "Alice", "Bob"), shot(3, "Bob")],
            "grandma": [shot(2, "Alice", "Bob")],
        },
        start,
        end,
        "https://p",
        max_pictures=2,
    )
    (message,) = plan.messages
    assert message.text == "This week: 3 new photos — Alice 2, Bob 2"
    assert [a.id for a in message.assets] == ["a3", "a2"]  # the newest as previews
    assert plan_digest({"kids": []}, start, end, "https://p", max_pictures=2).messages == ()


async def test_a_digest_posts_what_the_rules_matched_since_its_previous_run(immich, tmp_path):
    out = io.StringIO()
    sunday = datetime(2026, 11, 29, 18, 0, 1, tzinfo=UTC)
    clock = Clock(sunday - timedelta(days=3))
    sidecar = await started(config(immich, tmp_path, posts="posts:\n" + DIGEST), clock, out)
    try:
        alice = PersonRef(immich.alice, "Alice")
        for n in range(3):
            asset = Asset(
                f"0000000{n}-0000-4000-8000-000000000000",
                "IMAGE",
                clock.now,
                clock.now,
                f"IMG_{n}.jpg",
                "timeline",
                False,
                (alice,),
            )
            sidecar.store.enqueue([("kids", "stdout", asset)], clock.now)
        await wait_for(lambda: len(lines(out)) == 3, "the rule's own deliveries")
        clock.now = sunday
        result = await sidecar.posts.run("weekly")
        assert result.result == "sent"
        await wait_for(lambda: len(lines(out)) == 3 + 3, "the digest")
        digest = [p for p in lines(out) if p.get("post") == "weekly"]
        assert {p["text"] for p in digest} == {"This week: 3 new photos — Alice 3"}
    finally:
        await sidecar.stop()


# -- exactly once, make-up, reload ------------------------------------------------------------


async def test_a_restart_after_posting_does_not_post_again(immich, tmp_path):
    past_photos(immich, 2023)
    immich.run_memory_job(TODAY)
    path = config(immich, tmp_path)
    out = io.StringIO()
    clock = Clock(NINE - timedelta(minutes=1))
    first = await started(path, clock, out)
    try:
        clock.now = NINE
        await first.posts._fire("memories")
        await wait_for(lambda: len(lines(out)) == 1, "the post")
    finally:
        await first.stop()
    clock.now = NINE + timedelta(hours=2)
    second = await started(path, clock, out)
    try:
        assert await second.posts.catch_up() == []
        assert (await second.posts.run("memories")).result == "skipped"
        await second.dispatcher.drain()
        assert len(lines(out)) == 1
    finally:
        await second.stop()


async def test_down_at_the_scheduled_time_makes_up_one_post_at_start(immich, tmp_path):
    past_photos(immich, 2023)
    immich.run_memory_job(TODAY)
    path = config(immich, tmp_path)
    out = io.StringIO()
    clock = Clock(datetime(2026, 12, 1, 7, tzinfo=UTC))
    first = await started(path, clock, out)
    await first.stop()  # down from 07:00 to 10:00: the 09:00 run was missed
    assert lines(out) == []
    clock.now = datetime(2026, 12, 1, 10, tzinfo=UTC)
    second = await started(path, clock, out)
    try:
        await wait_for(lambda: len(lines(out)) == 1, "one make-up post")
        assert await second.posts.catch_up() == []  # not twice
        await second.dispatcher.drain()
        assert len(lines(out)) == 1
    finally:
        await second.stop()
    clock.now = datetime(2026, 12, 2, 8, tzinfo=UTC)  # the next day before 09:00: nothing to
    third = await started(path, clock, out)  # make up (yesterday's is over)
    try:
        assert await third.posts.catch_up() == []
    finally:
        await third.stop()


async def test_a_new_state_file_makes_nothing_up_it_never_missed(immich, tmp_path, caplog):
    """The first start after 09:00 of a new state file: the sidecar was not down at 09:00, it
    did not exist. Nothing is posted at start, and the log says when the first run is."""
    past_photos(immich, 2023)
    immich.run_memory_job(TODAY)
    caplog.set_level(logging.INFO, logger="sidecar.engine.posts.scheduler")
    out = io.StringIO()
    clock = Clock(datetime(2026, 12, 1, 10, tzinfo=UTC))
    sidecar = await started(config(immich, tmp_path), clock, out)
    try:
        assert await sidecar.posts.catch_up() == []
        assert sidecar.store.rows() == []
    finally:
        await sidecar.stop()
    said = [r.getMessage() for r in caplog.records]
    assert not any("making up" in line or "missed" in line for line in said), said
    assert any(line.startswith("post memories: first run 2026-12-02 09:00") for line in said), said
    clock.now = datetime(2026, 12, 2, 10, tzinfo=UTC)  # down at 09:00 the next day: made up
    again = await started(config(immich, tmp_path), clock, out)
    try:
        await wait_for(lambda: again.store.post_ran("memories", "2026-12-02"), "the make-up run")
    finally:
        await again.stop()


async def test_a_reload_that_changes_a_cron_takes_effect(immich, tmp_path):
    path = config(immich, tmp_path)
    clock = Clock(datetime(2026, 12, 1, 7, tzinfo=UTC))
    sidecar = await started(path, clock, io.StringIO())
    try:
        config(
            immich,
            tmp_path,
            posts=MEMORIES.replace("0 9 * * *", "30 18 * * *") + BIRTHDAYS,
            timezone="Europe/Paris",
        )
        assert await sidecar.reload()
        runs = sidecar.posts.next_runs()
        assert runs["memories"] == datetime(2026, 12, 1, 17, 30, tzinfo=UTC)  # 18:30 Paris
        assert runs["birthdays"] == datetime(2026, 12, 1, 7, tzinfo=UTC)
        assert sidecar._scheduler is not None
        job = sidecar._scheduler.get_job("post:memories")
        assert "hour='18'" in str(job.trigger) and "minute='30'" in str(job.trigger)
        config(immich, tmp_path, posts="posts:\n" + BIRTHDAYS)
        assert await sidecar.reload()
        assert sidecar._scheduler.get_job("post:memories") is None
        assert set(sidecar.posts.next_runs()) == {"birthdays"}
    finally:
        await sidecar.stop()


def test_last_fire_is_the_schedules_last_time_today():
    from zoneinfo import ZoneInfo

    from sidecar.config.cron import post_trigger

    utc = ZoneInfo("UTC")
    trigger = post_trigger("0 9 * * *", utc)
    assert last_fire(trigger, datetime(2026, 12, 1, 8, 59, tzinfo=UTC), utc) is None
    assert last_fire(trigger, NINE, utc) == datetime(2026, 12, 1, 9, tzinfo=UTC)
    every = post_trigger("* * * * *", utc)
    assert last_fire(every, NINE, utc) == datetime(2026, 12, 1, 9, tzinfo=UTC)


# -- config -----------------------------------------------------------------------------------


BASE = """\
immich:
  url: http://immich:2283
  api_key: key
targets:
  stdout: {console: true}
rules:
  - name: kids
    targets: [stdout]
"""


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ or {})
    return caught.value.lines()


def test_one_message_per_year_is_a_memories_option_only(tmp_path):
    path = tmp_path / "config.yaml"
    posts = BIRTHDAYS.replace("max_pictures: 2", "one_message_per_year: true")
    write_config(
        path,
        immich_url="http://127.0.0.1:9",
        state=tmp_path / "state.db",
        rules="- name: kids\n  targets: [stdout]",
        extra="posts:\n" + posts,
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"IMMICH_API_KEY": "k"})
    [line] = [p for p in caught.value.lines() if "one_message_per_year" in p]
    assert "posts[0].one_message_per_year: only memories posts have years" in line
    write_config(
        path,
        immich_url="http://127.0.0.1:9",
        state=tmp_path / "state.db",
        rules="- name: kids\n  targets: [stdout]",
        extra=MEMORIES + "    one_message_per_year: true\n",
    )
    assert load_settings(path, environ={"IMMICH_API_KEY": "k"}).posts[0].one_message_per_year


async def test_a_sidecar_of_posts_only_needs_no_rules(immich, tmp_path, capsys):
    """No ``rules:`` at all: the config loads, check-config says so, polls ask Immich for no
    new assets, and the posts run."""
    from sidecar.cli.main import main

    past_photos(immich, 2023)
    immich.run_memory_job(TODAY)
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(f"""\
            immich: {{url: "{immich.url}", api_key: "${{IMMICH_API_KEY}}"}}
            state: {{path: "{tmp_path / "state.db"}"}}
            metrics: {{listen: "127.0.0.1:{free_port()}"}}
            targets: {{stdout: {{console: true}}}}
            """)
        + MEMORIES
    )
    assert main(["check-config", "-c", str(path)]) == 0
    assert "0 rules, 1 target" in capsys.readouterr().out
    out = io.StringIO()
    clock = Clock(NINE - timedelta(minutes=1))
    sidecar = await started(path, clock, out)
    try:
        await sidecar.poll_job.run()
        assert sidecar.poll.error is None and sidecar.readiness() == []
        assert immich.api_requests("POST", "/api/search/metadata") == []
        clock.now = NINE
        assert (await sidecar.posts.run("memories")).result == "sent"
        await wait_for(lambda: len(lines(out)) == 1, "the memories post")
    finally:
        await sidecar.stop()


def test_a_bad_cron_is_reported_at_its_line(tmp_path):
    found = problems(
        tmp_path,
        BASE
        + textwrap.dedent("""\
        posts:
          - name: m
            kind: memories
            cron: "0 25 * * *"
            targets: [stdout]
          - name: w
            kind: digest
            cron: "0 9 * *"
            targets: [stdot]
            rules: [kid]
          - name: s
            kind: birthdays
            cron: "0 9 * * 0"
            targets: [stdout]
        """),
    )
    text = "\n".join(found)
    assert (
        f"{tmp_path / 'c.yaml'}:12: posts[0].cron: the hour field is '25': hours go from 0 to 23"
    ) in text
    assert (
        "c.yaml:16: posts[1].cron: a cron has five fields (minute hour day month weekday), "
        "this has 4"
    ) in text
    assert "c.yaml:17: posts[1].targets[0]: 'stdot' is not a defined target" in text
    assert (
        "c.yaml:18: posts[1].rules[0]: 'kid' is not a defined rule (did you mean 'kids'?)" in text
    )
    assert "c.yaml:21: posts[2].cron: write the weekday ('0') with names" in text


@pytest.mark.parametrize(
    ("cron", "fires"),
    [
        ("@hourly", ["2026-03-04 10:00", "2026-03-04 11:00"]),
        ("@daily", ["2026-03-05 00:00", "2026-03-06 00:00"]),
        ("@midnight", ["2026-03-05 00:00", "2026-03-06 00:00"]),
        # cron's Sunday midnight: APScheduler would read a 0 in the weekday field as Monday
        ("@weekly", ["2026-03-08 00:00", "2026-03-15 00:00"]),
        ("@monthly", ["2026-04-01 00:00", "2026-05-01 00:00"]),
        ("@yearly", ["2027-01-01 00:00", "2028-01-01 00:00"]),
        ("@annually", ["2027-01-01 00:00", "2028-01-01 00:00"]),
        ("@Daily", ["2026-03-05 00:00", "2026-03-06 00:00"]),
    ],
)
def test_cron_aliases_fire_when_cron_fires_them(cron, fires):
    zone = ZoneInfo("Europe/Paris")
    trigger = post_trigger(cron, zone)
    now = datetime(2026, 3, 4, 9, 30, tzinfo=zone)  # a Wednesday
    first = trigger.get_next_fire_time(None, now)
    second = trigger.get_next_fire_time(first, first + timedelta(seconds=1))
    assert [f"{t:%Y-%m-%d %H:%M}" for t in (first, second)] == fires


@pytest.mark.parametrize(
    ("zone", "start", "cron", "fires"),
    [
        # APScheduler 3 alone skips 03-30 00:00 (it adds 24 hours to a 23-hour day).
        ("Europe/Paris", "2026-03-28", "@daily", ["03-29 00:00", "03-30 00:00", "03-31 00:00"]),
        ("America/New_York", "2026-03-07", "0 0 * * *", ["03-08 00:00", "03-09 00:00"]),
        ("Europe/Paris", "2026-03-04", "@monthly", ["04-01 00:00", "05-01 00:00"]),
        # 02:30 does not exist on 03-29 in Paris: passed over, as APScheduler documents
        ("Europe/Paris", "2026-03-27", "30 2 * * *", ["03-28 02:30", "03-30 02:30"]),
        # 02:30 happens twice on 10-25: once
        ("Europe/Paris", "2026-10-23", "30 2 * * *", ["10-24 02:30", "10-25 02:30", "10-26 02:30"]),
    ],
)
def test_a_schedule_keeps_the_wall_clock_across_daylight_saving(zone, start, cron, fires):
    tz = ZoneInfo(zone)
    trigger = post_trigger(cron, tz)
    now = datetime.fromisoformat(f"{start}T12:00").replace(tzinfo=tz)
    previous, found = None, []
    for _ in fires:
        previous = trigger.get_next_fire_time(previous, now)
        found.append(f"{previous:%m-%d %H:%M}")
        now = previous + timedelta(microseconds=1)
    assert found == fires


@pytest.mark.parametrize(
    ("cron", "said"),
    [
        ("0 25 * * *", "the hour field is '25': hours go from 0 to 23"),
        ("60 9 * * *", "the minute field is '60': minutes go from 0 to 59"),
        ("0 9 32 * *", "the day of the month field is '32': days of the month go from 1 to 31"),
        ("0 9 * 13 *", "the month field is '13': months go from 1 to 12"),
        ("0 9 * foo *", "the month field is 'foo': not a month: write 1 to 12 or jan-dec"),
        ("0 9 * * fri-xyz", "the weekday field is 'fri-xyz': not a weekday: write 0 to 6 or mon"),
        ("x 9 * * *", "the minute field is 'x': not a minute"),
        ("@reboot", "@reboot has no time of day for a post to run at"),
        ("@fortnightly", "'@fortnightly' is not a cron alias (use @yearly, @monthly, @weekly, "),
    ],
)
def test_a_bad_cron_names_the_field(tmp_path, cron, said):
    found = problems(tmp_path, BASE + MEMORIES.replace('"0 9 * * *"', f'"{cron}"'))
    assert any(f"posts[0].cron: {said}" in line for line in found), found


def test_the_timezone_is_validated_and_defaults_to_tz_then_utc(tmp_path):
    assert any(
        "timezone: 'Mars/Olympus' is not an IANA time zone" in line
        for line in problems(tmp_path, BASE + "timezone: Mars/Olympus\n")
    )
    path = tmp_path / "ok.yaml"
    path.write_text(BASE + MEMORIES)
    assert load_settings(path, {"TZ": "Europe/Paris"}).timezone == "Europe/Paris"
    assert load_settings(path, {}).timezone == "UTC"
    assert load_settings(path, {}).posts[0].line == 10
    assert any(
        "the TZ environment variable ('Nowhere') is not an IANA time zone" in line
        for line in problems(tmp_path, BASE + MEMORIES, {"TZ": "Nowhere"})
    )


# -- check-config and dry-run --posts ---------------------------------------------------------


def test_check_config_prints_each_posts_next_run(tmp_path, capsys):
    from sidecar.cli.main import main

    path = tmp_path / "c.yaml"
    path.write_text(BASE + "timezone: Europe/Paris\n" + MEMORIES + BIRTHDAYS)
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'post memories (memories, "0 9 * * *"): next run ' in out
    assert "09:00 Europe/Paris" in out and "08:00 Europe/Paris" in out


async def test_dry_run_posts_shows_what_each_post_would_send_and_stores_nothing(immich, tmp_path):
    from sidecar.engine.posts.dry_run import _dry_run_posts

    today = datetime.now(UTC).date()
    past_photos(immich, today.year - 2, day=today)
    immich.run_memory_job(today)
    path = config(immich, tmp_path, posts=MEMORIES + BIRTHDAYS)
    out = io.StringIO()
    assert await _dry_run_posts(path, out) == 0
    text = out.getvalue()
    assert "memories (memories) -> stdout: 1 memory from Immich" in text
    assert f"📅 2 years ago today ({today.year - 2}): 1 photo [1 picture]" in text
    assert "birthdays (birthdays) -> stdout:" in text
    assert not (tmp_path / "state.db").exists()
    # The same post with its own language says it in that language too.
    path.write_text(path.read_text().replace("kind: memories", "kind: memories\n    locale: de"))
    out = io.StringIO()
    assert await _dry_run_posts(path, out) == 0
    assert f"says in stdout (de): 📅 Heute vor 2 Jahren ({today.year - 2}): 1 Foto" in (
        out.getvalue()
    )


async def test_dry_run_posts_says_a_post_already_sent_today(immich, tmp_path):
    from sidecar.engine.posts.dry_run import _dry_run_posts

    now = datetime.now(UTC)
    past_photos(immich, now.year - 2, day=now.date())
    immich.run_memory_job(now.date())
    posts = MEMORIES.replace('"0 9 * * *"', '"0 0 * * *"')  # midnight: always past today
    path = config(immich, tmp_path, posts=posts)
    clock = Clock(now - timedelta(seconds=1))
    sidecar = await started(path, clock, io.StringIO())
    try:  # known to the state file since yesterday: today's midnight run is made up
        sidecar.store.set_time("post_known_since:memories", now - timedelta(days=1))
        assert (await sidecar.posts.run("memories")).result == "sent"
    finally:
        await sidecar.stop()
    out = io.StringIO()
    assert await _dry_run_posts(path, out) == 0
    text = out.getvalue()
    assert f"memories (memories) -> stdout: already sent for {now.date().isoformat()} at " in text
    assert "nothing more today; next run " in text
    assert "years ago today" not in text


# -- quiet hours ------------------------------------------------------------------------------


def test_quiet_windows_across_midnight_and_within_a_day():
    from datetime import time
    from zoneinfo import ZoneInfo

    from sidecar.config.model import QuietHours
    from sidecar.engine.dispatch.quiet import window_end

    paris = ZoneInfo("Europe/Paris")
    night = QuietHours(time(22), time(7))
    at = lambda h, m=0, d=1: datetime(2026, 12, d, h, m, tzinfo=paris)  # noqa: E731
    assert window_end(night, at(23), paris) == at(7, d=2)
    assert window_end(night, at(6, 59), paris) == at(7)
    assert window_end(night, at(7), paris) is None
    assert window_end(night, at(12), paris) is None
    work = QuietHours(time(9), time(17, 30))
    assert window_end(work, at(10), paris) == at(17, 30)
    assert window_end(work, at(18), paris) is None


def test_deliveries_released_from_quiet_hours_form_one_summary_per_rule():
    from sidecar.engine.dispatch.dispatcher import RuleOptions, group_batches
    from sidecar.targets.base import Delivery
    from sidecar.targets.discord.render.batch import render_batch

    def delivery(n: int, rule: str, held: bool = True) -> Delivery:
        asset = Asset(
            f"a{n}", "IMAGE", NINE, None, "", "timeline", False, (PersonRef("p1", "Alice"),)
        )
        return Delivery(id=n, rule=rule, target="family", asset=asset, held=held)

    batches = group_batches(
        [delivery(n, "kids") for n in range(1, 6)] + [delivery(9, "grandma")],
        lambda _rule: RuleOptions(),
    )
    kids = next(b for b in batches if b.rule == "kids")
    (message,) = render_batch(kids, "https://p", {})
    assert message.content == "Alice: 5 new photos"
    assert message.delivery_ids == (1, 2, 3, 4, 5)
    (alone,) = [b for b in batches if b.rule == "grandma"]
    assert len(render_batch(alone, "https://p", {})) == 1
    # Not held: five separate embeds in one message, as before.
    (plain,) = render_batch(
        group_batches(
            [delivery(n, "kids", held=False) for n in range(1, 6)], lambda _rule: RuleOptions()
        )[0],
        "https://p",
        {},
    )
    assert len(plain.embeds) == 5


async def test_quiet_hours_hold_deliveries_across_a_restart_and_release_them_at_the_end(
    immich, tmp_path
):
    path = tmp_path / "config.yaml"
    write_config(
        path,
        immich_url=immich.url,
        state=tmp_path / "state.db",
        metrics_port=free_port(),
        interval="1h",
        targets="stdout: {console: true, quiet_hours: {from: '22:00', to: '07:00'}}",
        rules="- name: kids\n  people: {any: [Alice]}\n  targets: [stdout]",
        extra="timezone: Europe/Paris\n",
    )
    night = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    clock = Clock(night)
    out = io.StringIO()
    sidecar = await started(path, clock, out)
    alice = PersonRef(immich.alice, "Alice")
    try:
        for n in range(3):
            asset = Asset(
                f"0000000{n}-0000-4000-8000-000000000000",
                "IMAGE",
                night,
                night,
                f"IMG_{n}.jpg",
                "timeline",
                False,
                (alice,),
            )
            sidecar.store.enqueue([("kids", "stdout", asset)], night)
        assert await sidecar.dispatcher.drain() == 0
        assert sidecar.store.next_due_at() == datetime(2026, 12, 2, 6, tzinfo=UTC)  # 07:00
    finally:
        await sidecar.stop()
    clock.now = night + timedelta(hours=2)  # restarted inside the window: still waiting
    sidecar = await started(path, clock, out)
    try:
        assert await sidecar.dispatcher.drain() == 0
        assert out.getvalue() == ""
        clock.now = datetime(2026, 12, 2, 6, 0, 1, tzinfo=UTC)
        await sidecar.dispatcher.drain()  # (or the dispatcher's own round, whichever is first)
        await wait_for(lambda: len(lines(out)) == 3, "the held deliveries")
        await sidecar.dispatcher.drain()
        assert len(lines(out)) == 3  # each exactly once
        assert {r.state for r in sidecar.store.rows()} == {"sent"}
    finally:
        await sidecar.stop()


async def test_a_failed_run_is_counted_retried_later_and_posts_nothing(
    tmp_path, monkeypatch, caplog
):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.add_person("Alice")
        carol = MEMORIES + "    people: {any: [Carol]}\n"  # named in Immich only later
        clock = Clock(NINE - timedelta(minutes=1))
        sidecar = await started(config(immich, tmp_path, carol), clock, io.StringIO())
        try:
            clock.now = NINE
            await sidecar.posts._fire("memories")
            await wait_for(
                lambda: (
                    sidecar.metrics.post_runs.labels(post="memories", result="failure")._value.get()
                    == 1
                ),
                "the failed run",
            )
            assert sidecar._scheduler is not None
            assert sidecar._scheduler.get_job("post:memories:retry") is not None
            assert not sidecar.store.post_ran("memories", "2026-12-01")  # so the retry runs
            assert any(
                "post memories failed for 2026-12-01" in r.getMessage() for r in caplog.records
            )
        finally:
            await sidecar.stop()


async def test_a_post_whose_permission_is_missing_is_skipped_not_retried(
    tmp_path, monkeypatch, caplog
):
    lacking_memory_read = ("asset.read", "asset.view", "asset.statistics", "person.read")
    async with FakeImmich(permissions=lacking_memory_read) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.add_person("Alice")
        out = io.StringIO()
        clock = Clock(NINE - timedelta(minutes=1))
        sidecar = await started(config(immich, tmp_path), clock, out)
        try:
            clock.now = NINE
            await sidecar.posts._fire("memories")
            await wait_for(
                lambda: (
                    sidecar.metrics.post_runs.labels(post="memories", result="skipped")._value.get()
                    == 1
                ),
                "the skipped run",
            )
            assert sidecar._scheduler is not None
            assert sidecar._scheduler.get_job("post:memories:retry") is None
            assert immich.api_requests("GET", "/api/memories") == []  # no call bound to fail
            assert out.getvalue() == ""
            assert [
                r.getMessage() for r in caplog.records if "memories posts are off" in r.getMessage()
            ] == [
                "memories posts are off: the Immich API key lacks memory.read; add it to the key "
                "(Immich: Account settings > API keys)"
            ]
        finally:
            await sidecar.stop()


# -- the fake Immich's memory oddities, pinned -------------------------------------------------


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def test_fake_memories_random_and_birth_dates_answer_like_immich(version):
    import httpx

    async with FakeImmich(version=version) as fake:
        alice = fake.add_person("Alice", birth_date="2019-12-01")
        fake.add_person("Faceless", birth_date="2019-12-01")  # no photo: not in GET /people
        past_photos(fake, 2023, people=[alice])
        assert fake.run_memory_job(TODAY) == 1
        late = past_photos(fake, 2021)[0]  # uploaded after the nightly job ran
        assert fake.run_memory_job(TODAY) == 0  # the job covers each day once
        headers = {"x-api-key": fake.api_key}
        async with httpx.AsyncClient(base_url=fake.url + "/api", headers=headers) as http:
            by_date = (
                await http.get("/memories", params={"for": "2026-12-01", "type": "on_this_day"})
            ).json()
            assert [m["data"]["year"] for m in by_date] == [2023]
            assert late not in {a["id"] for m in by_date for a in m["assets"]}
            as_time = await http.get("/memories", params={"for": "2026-12-01T00:00:00.000Z"})
            assert as_time.status_code == (400 if fake.is_v3 else 200)  # 3.x: a date only
            random = (await http.post("/search/random", json={"size": 5})).json()
            assert isinstance(random, list) and len(random) == 2  # a bare array
            people = (await http.get("/people")).json()["people"]
            assert [(p["name"], p["birthDate"]) for p in people] == [("Alice", "2019-12-01")]


def test_the_digests_match_log_is_kept_two_months_then_forgotten(tmp_path):
    from sidecar.engine.store.database import Store

    store = Store.open(tmp_path / "state.db")
    asset = Asset("a1", "IMAGE", NINE, None, "", "timeline", False, ())
    store.enqueue([("kids", "stdout", asset)], NINE)
    later = NINE + timedelta(days=30)
    store.forget_sent_before(later)
    assert [a.id for a in store.matches_between(["kids"], NINE, later)["kids"]] == ["a1"]
    store.forget_sent_before(NINE + timedelta(days=63))
    assert store.matches_between(["kids"], NINE, later)["kids"] == []
    store.close()
