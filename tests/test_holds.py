"""Nothing lost while a feature is off (issue 23): a rule that a missing permission turned off is
held where its account's cursors stood and catches up from there once it runs again, across a
restart, however long it was off; album rules keep their albums' state meanwhile."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from datetime import timedelta

import pytest

from sidecar.config.loader import load_settings
from sidecar.config.model import PeopleFilter, Rule
from sidecar.engine.planning import build_watch, rules_off
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from tests.e2e_harness import write_config
from tests.fakes.fake_immich import FakeImmich
from tests.test_albums import Clock as AlbumClock
from tests.test_albums import Rig as AlbumRig
from tests.test_albums import holiday_rule
from tests.test_poller import V2, Clock, Rig

EVERYTHING = Rule("everything", ("family",))
KIDS = Rule("kids", ("family",), PeopleFilter(any=("Alice",)))
RULES = [KIDS, EVERYTHING]


def off(watch: Watch, *names: str) -> Watch:
    """The watch a poll runs while these rules' feature is off."""
    return replace(
        watch, rules=tuple(r for r in watch.rules if r.name not in names), held=tuple(names)
    )


@pytest.fixture(params=[V2, (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def rig(request, tmp_path):
    clock = Clock()
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param, clock=clock) as immich:
        rig = Rig(immich, store, clock)
        await rig.client.version()
        rig.poller.start_baseline([r.name for r in RULES], backfill=timedelta(0))
        yield rig
        await rig.client.aclose()
    store.close()


async def polls(rig: Rig, watch: Watch, times: int, step: timedelta) -> None:
    for _ in range(times):
        rig.clock.now += step
        await rig.poller.poll(watch)


async def test_uploads_made_while_a_rule_is_off_are_decided_once_it_is_back(rig, tmp_path):
    watch = rig.watch(RULES)
    await polls(rig, watch, 2, timedelta(minutes=1))
    made = []
    for index in range(5):  # five photos over three polls while both rules are off
        made.append(rig.photo(*([rig.alice] if index % 2 == 0 else []), ago=timedelta(0)))
        if index % 2:
            await polls(rig, off(watch, "kids", "everything"), 1, timedelta(minutes=1))
    await polls(rig, off(watch, "kids", "everything"), 1, timedelta(minutes=1))
    assert rig.queued() == set()
    assert set(rig.store.rule_holds()) == {"kids", "everything"}
    rig.store.close()  # a restart while they are off: the holds are in the state file
    rig.store = Store.open(tmp_path / "state.db")
    rig.poller = Poller(rig.client, rig.store, rig.metrics, rig.clock)
    await polls(rig, off(watch, "kids", "everything"), 1, timedelta(minutes=1))
    await polls(rig, watch, 1, timedelta(minutes=1))  # the permission is back
    assert rig.queued() == {("everything", a) for a in made} | {("kids", a) for a in made[::2]}
    assert rig.store.rule_holds() == {}
    await polls(rig, watch, 3, timedelta(minutes=2))
    assert len(rig.store.rows()) == 8  # each once


async def test_a_people_rule_off_longer_than_the_look_back_still_catches_up(rig):
    watch = rig.watch(RULES)
    await polls(rig, watch, 1, timedelta(minutes=1))
    photo = rig.photo(rig.alice, ago=timedelta(0))
    await polls(rig, off(watch, "kids"), 1, timedelta(minutes=1))
    await polls(rig, off(watch, "kids"), 1, timedelta(days=3))  # lookback is 48 h
    await polls(rig, watch, 1, timedelta(minutes=1))
    assert ("kids", photo) in rig.queued()


async def test_an_asset_unread_when_the_rule_stopped_is_decided_for_it_when_back(rig):
    """The unread window that the rules still running closed while it was off is reached by
    its catch-up."""
    also = Rule("also", ("family",))  # another rule without people, that keeps running
    watch = rig.watch([*RULES, also])
    await polls(rig, watch, 1, timedelta(minutes=1))
    [scan] = rig.immich.library_scan(1, created_at=rig.clock.now, extract_after=timedelta(hours=1))
    await polls(rig, watch, 2, timedelta(minutes=2))
    assert rig.store.unread_windows() != []
    await polls(rig, off(watch, "everything"), 4, timedelta(hours=1))  # extraction ran meanwhile
    assert ("also", scan) in rig.queued() and ("everything", scan) not in rig.queued()
    assert rig.store.unread_windows() == []
    await polls(rig, watch, 1, timedelta(minutes=1))
    assert ("everything", scan) in rig.queued()


async def test_rows_a_catch_up_can_reach_are_not_forgotten(rig):
    """The rule without people posted a photo at once; off for days, its catch-up passes that
    photo again: the sent row is still there, so it is not posted twice."""
    watch = rig.watch(RULES)
    await polls(rig, watch, 1, timedelta(minutes=1))
    rig.clock.now += timedelta(seconds=10)
    photo = rig.photo(ago=timedelta(seconds=5))
    await rig.poller.poll(watch)  # the eager pass decides it, ahead of the settled cursor
    assert ("everything", photo) in rig.queued()
    rig.store.mark_sent([r.id for r in rig.store.rows()], rig.clock.now)
    await polls(rig, off(watch, "everything"), 4, timedelta(days=2))
    # Without the hold it would be gone by now (older than twice the look-back).
    assert [(r.rule, r.asset_id, r.state) for r in rig.store.rows()] == [
        ("everything", photo, "sent")
    ]
    await polls(rig, watch, 1, timedelta(minutes=1))
    assert [r for r in rig.store.rows() if r.state == "pending"] == []  # not queued again


async def test_a_rule_removed_while_held_leaves_no_hold(rig):
    watch = rig.watch(RULES)
    await polls(rig, watch, 1, timedelta(minutes=1))
    await polls(rig, off(watch, "everything"), 1, timedelta(minutes=1))
    assert set(rig.store.rule_holds()) == {"everything"}
    await polls(rig, rig.watch([KIDS]), 1, timedelta(minutes=1))  # a reload dropped it
    assert rig.store.rule_holds() == {}


# -- album rules ----------------------------------------------------------------------------


@pytest.fixture(params=[V2, (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def album_rig(request, tmp_path):
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param) as immich:
        rig = AlbumRig(immich, store, AlbumClock())
        await rig.client.version()
        rig.poller.start_baseline([], backfill=timedelta(0))
        yield rig
        await rig.client.aclose()
    store.close()


async def test_an_album_rule_off_keeps_its_albums_and_finds_what_was_added_meanwhile(album_rig):
    rig = album_rig
    holiday = rig.immich.add_album("Holiday 2026", [rig.old_photo()])
    rule = holiday_rule()
    assert await rig.poll([rule]) == 0  # the baseline
    watch = await rig.watch([rule])
    while_off = replace(watch, rules=(), albums_held=True)
    added = rig.old_photo()
    rig.immich.add_to_album(holiday, [added])
    await rig.poller.poll(while_off)  # album.read missing: the rule does not run
    assert rig.store.album_states() != {}
    assert await rig.poll([rule]) == 1  # back: the photo added meanwhile is announced
    assert [row[1] for row in rig.album_rows()] == [added]


def test_only_rules_of_the_account_that_are_off_are_held(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MUM_KEY", "mum-key")
    monkeypatch.setenv("LEO_KEY", "leo-key")
    path = tmp_path / "config.yaml"
    rules = textwrap.dedent("""\
        - {name: kids, people: {any: [Alice]}, targets: [stdout]}
        - {name: everything, targets: [stdout]}
        - {name: trip, albums: {any: [Trip]}, targets: [stdout]}
        - {name: leo-only, accounts: [leo], targets: [stdout]}
        """)
    accounts = {"mum": "MUM_KEY", "leo": "LEO_KEY"}
    write_config(
        path,
        immich_url="http://127.0.0.1:9",
        state=tmp_path / "s.db",
        rules=rules,
        accounts=accounts,
    )
    settings = load_settings(path)
    refused = {"everything", "trip", "leo-only"}
    watch = build_watch(settings, (), rules_off(settings, "mum", lambda r: r.name not in refused))
    assert watch.held == ("everything",) and watch.albums_held
    leo = build_watch(settings, (), rules_off(settings, "leo", lambda r: r.name not in refused))
    assert leo.held == ("everything", "leo-only")
