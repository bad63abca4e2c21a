"""External-library imports against the poller: a scan inserts its batch at one moment and
without exif rows, and metadata extraction reads the files later (minutes, hours, or after a
paused queue is resumed). Rules without people must decide every asset once, after its metadata
arrived, at a cost that follows the new assets.

The fake Immich's extraction runs on the rig's clock, so minutes pass without waiting.
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta

import pytest

from sidecar.config.model import PeopleFilter, Rule, Secret
from sidecar.engine.dry_run import dry_run
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller
from sidecar.engine.uploads.stream import METADATA_WAIT
from sidecar.immich.client import ImmichClient
from sidecar.ops.metrics import Metrics
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.test_poller import V2, V32, Clock, Rig

EVERYTHING = [Rule("everything", ("family",), PeopleFilter())]
NOT_CAROL = [Rule("not-carol", ("family",), PeopleFilter(none=("Carol",)))]


@pytest.fixture(params=[V2, (3, 1, 0), V32], ids=["immich-2.7", "immich-3.1", "immich-3.2"])
async def rig(request, tmp_path):
    clock = Clock()
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param, clock=clock) as immich:
        rig = Rig(immich, store, clock)
        await rig.client.version()
        rig.poller.start_baseline(["everything"], backfill=timedelta(hours=1))
        yield rig
        await rig.client.aclose()
    store.close()


def offset_pages(rig: Rig) -> list[int]:
    return [r.json["page"] for r in rig.searches() if r.json and r.json.get("page", 1) > 1]


async def test_a_library_scan_read_after_settle_is_decided_once_when_its_metadata_arrives(rig):
    """The regression: the window passed the batch before extraction, and every asset was
    skipped for good (882 of 1,100 on a real 2.7.5)."""
    scan = rig.immich.library_scan(
        300, created_at=rig.clock.now - timedelta(seconds=30), extract_after=timedelta(minutes=5)
    )
    await rig.poll(EVERYTHING)
    rig.clock.advance(minutes=2)
    await rig.poll(EVERYTHING)  # the window passes the batch: nothing readable yet
    assert rig.queued() == set()
    # The eager pass (no settle) saw it first, the settled pass now: each waits for it.
    assert sorted(w.kind for w in rig.store.unread_windows()) == ["eager", "settled"]
    rig.clock.advance(minutes=3)  # extraction ran: the metadata is 0 to 30 s old
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", a) for a in scan}
    assert rig.store.unread_windows() == []
    rig.clock.advance(minutes=2)
    result = await rig.poll(EVERYTHING)
    assert result.queued == 0 and len(rig.store.rows()) == 300
    assert [r.path for r in rig.immich.requests] == ["/api/search/statistics"]  # a count: 0


async def test_an_exclusion_waits_settle_after_the_metadata_arrived(rig):
    """Immich looks for faces only after it read the file: a ``none:`` rule waits until the
    asset has been unchanged for settle, as it waits after an upload."""
    await rig.poll(NOT_CAROL)  # the rule starts watching now
    scan = rig.immich.library_scan(20, created_at=rig.clock.now, extract_after=timedelta(minutes=5))
    rig.clock.advance(minutes=2, seconds=30)
    await rig.poll(NOT_CAROL)
    rig.clock.advance(minutes=2, seconds=40)  # extraction ran: the metadata is 10 s old
    await rig.poll(NOT_CAROL)
    assert rig.queued() == set()
    rig.immich.recognise(scan[0], rig.carol)  # found in the meantime
    rig.clock.advance(minutes=2)
    await rig.poll(NOT_CAROL)
    assert rig.queued() == {("not-carol", a) for a in scan[1:]}


async def test_regression_library_assets_read_after_the_window_passed_them_are_not_lost(rig):
    """Fails on the sidecar before unread windows: 0 of 40 queued."""
    scan = rig.immich.library_scan(
        40, created_at=rig.clock.now - timedelta(minutes=1), extract_after=timedelta(minutes=4)
    )
    for _ in range(8):
        rig.clock.advance(minutes=1)
        await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", a) for a in scan}


async def test_extraction_paused_across_a_restart_loses_nothing(rig, tmp_path):
    rig.immich.pause_extraction()
    scan = rig.immich.library_scan(120, created_at=rig.clock.now - timedelta(minutes=5))
    await rig.poll(EVERYTHING)
    rig.clock.advance(minutes=10)
    await rig.poll(EVERYTHING)
    assert rig.queued() == set()
    rig.store.close()  # the sidecar stops; the queue stays paused for an hour
    rig.store = Store.open(tmp_path / "state.db")
    rig.poller = Poller(rig.client, rig.store, rig.metrics, rig.clock)
    rig.clock.advance(hours=1)
    await rig.poll(EVERYTHING)
    assert rig.queued() == set()
    rig.immich.resume_extraction()
    rig.clock.advance(seconds=1)
    await rig.poll(EVERYTHING)
    rig.clock.advance(minutes=3)
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", a) for a in scan}
    assert len(rig.store.rows()) == 120


async def test_2500_tied_library_assets_are_paged_without_offsets(rig):
    """One batch: one createdAt, one mtime, one date in the files. 2.x returns the ties in a
    new order on every request; extraction gives each asset its own updatedAt, which the pager
    splits on."""
    taken = rig.clock.now - timedelta(days=90)
    scan = rig.immich.library_scan(
        2_500,
        created_at=rig.clock.now - timedelta(minutes=1),
        taken_at=rig.clock.now - timedelta(days=1),
        exif_taken_at=taken,
        extract_after=timedelta(seconds=20),
    )
    rig.clock.advance(minutes=2)
    await rig.poll(EVERYTHING)
    rig.clock.advance(minutes=3)
    await rig.poll(EVERYTHING)
    queued = [r.asset_id for r in rig.store.rows()]
    assert sorted(queued) == sorted(scan)  # 0 missing, 0 twice
    assert offset_pages(rig) == []
    assert rig.store.unread_windows() == []


async def test_an_upload_older_than_settle_is_decided_once_at_the_first_poll(rig):
    """The settled pass decides it; the eager pass (from where the settled one ends) has
    nothing: one count for both, each pass's own count, one search."""
    video = rig.photo(type="VIDEO", ago=timedelta(minutes=3))
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", video)}
    paths = [r.path for r in rig.immich.requests]
    assert paths == ["/api/search/statistics"] * 3 + ["/api/search/metadata"]
    assert rig.store.unread_windows() == []


async def test_an_upload_is_decided_at_the_first_poll_that_sees_it_not_after_settle(rig):
    await rig.poll(EVERYTHING)
    rig.clock.advance(seconds=10)
    photo = rig.photo(ago=timedelta(seconds=5))
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", photo)}  # no settle wait: its metadata is there
    rig.clock.advance(minutes=3)
    result = await rig.poll(EVERYTHING)  # the settled pass sees it again: queued once
    assert result.queued == 0 and len(rig.store.rows()) == 1


async def test_an_upload_stamped_before_the_eager_cursor_is_not_lost(rig):
    """Immich's clock a little behind the sidecar's (or a long insert): the asset appears with
    a creation time the eager pass had passed already; the settled pass still decides it."""
    await rig.poll(EVERYTHING)
    rig.clock.advance(seconds=10)
    await rig.poll(EVERYTHING)
    late = rig.photo(ago=timedelta(seconds=8))  # created before the last poll, seen only now
    rig.clock.advance(seconds=10)
    await rig.poll(EVERYTHING)
    assert rig.queued() == set()
    rig.clock.advance(minutes=2)
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", late)}


async def test_revisiting_asks_only_for_what_changed_and_grows_with_the_batch(rig):
    rig.immich.add_assets_bulk(5_000, created_at=rig.clock.now - timedelta(days=3))  # the library
    rig.immich.pause_extraction()
    rig.immich.library_scan(50, created_at=rig.clock.now - timedelta(minutes=3))
    await rig.poll(EVERYTHING)
    for _ in range(5):  # the queue stays paused: each look is small
        rig.clock.advance(minutes=1)
        await rig.poll(EVERYTHING)
        searches = rig.searches()
        assert all(r.json and "updatedAfter" in r.json for r in searches)
        assert sum(r.response_bytes for r in rig.immich.requests) < 1_000
        # The new window's count, the unread window's changed assets (none) and its count.
        assert len(rig.immich.requests) == 3


async def test_after_the_wait_an_unread_asset_is_decided_without_metadata(rig, caplog):
    rig.immich.pause_extraction()
    [stuck] = rig.immich.library_scan(1, created_at=rig.clock.now - timedelta(minutes=3))
    await rig.poll(EVERYTHING)
    rig.clock.advance(seconds=(METADATA_WAIT - timedelta(minutes=1)).total_seconds())
    await rig.poll(EVERYTHING)
    assert rig.queued() == set()
    rig.clock.advance(minutes=2)
    await rig.poll(EVERYTHING)
    assert rig.queued() == {("everything", stuck)}
    assert rig.store.unread_windows() == []
    assert any("still had no metadata after 24 hours" in r.getMessage() for r in caplog.records)
    rig.immich.resume_extraction()  # read at last: not sent again
    rig.clock.advance(minutes=5)
    await rig.poll(EVERYTHING)
    assert len(rig.store.rows()) == 1


async def test_a_decided_asset_deleted_while_another_waits_does_not_close_the_window(rig):
    rig.immich.pause_extraction()
    first, second = rig.immich.library_scan(2, created_at=rig.clock.now - timedelta(minutes=3))
    rig.immich.resume_extraction()
    rig.immich.pause_extraction()  # only the first was read before the queue stopped
    assert rig.immich.unread_count() == 1
    await rig.poll(EVERYTHING)
    rig.clock.advance(minutes=3)
    await rig.poll(EVERYTHING)
    assert {a for _, a in rig.queued()} == {first}
    rig.immich.trash(first)
    rig.clock.advance(minutes=3)
    await rig.poll(EVERYTHING)
    assert len(rig.store.unread_windows()) == 1
    rig.immich.resume_extraction()
    rig.clock.advance(minutes=3)
    await rig.poll(EVERYTHING)
    assert {a for _, a in rig.queued()} == {first, second}


@pytest.mark.parametrize("version", [V2, (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def test_offsets_warn_only_where_they_can_lose_assets(version, caplog):
    """More than a page sharing taken, upload and change moments (one bulk statement): no
    bound tells them apart, so offsets it is; from 3.1 Immich orders ties by id and offsets are
    safe, so only older servers get the warning."""
    async with FakeImmich(version=version) as immich:
        created = immich.add_assets_bulk(1_200, upload_gap=timedelta(0))
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            await client.version()  # as the sidecar does at start
            found = [a.id async for page in client.iter_search() for a in page.assets]
    warned = [r.getMessage() for r in caplog.records if "twice and others never" in r.getMessage()]
    if version >= (3, 1, 0):
        assert sorted(found) == sorted(created) and warned == []
    else:
        assert len(warned) == 1 and "uploaded" in warned[0] and "before 3.1" in warned[0]


async def test_dry_run_says_how_many_new_assets_wait_for_their_metadata(tmp_path, monkeypatch):
    async with FakeImmich(version=V2) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.pause_extraction()
        immich.library_scan(7, created_at=datetime.now(UTC) - timedelta(minutes=10))
        upload = immich.add_asset(created_at=datetime.now(UTC) - timedelta(minutes=5))
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules="- name: everything\n  targets: [stdout]\n",
        )
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0
    text = out.getvalue()
    assert "7 assets created in that time have no metadata yet" in text
    assert upload in text and "1 asset examined, 1 match" in text
    assert not (tmp_path / "state.db").exists()
