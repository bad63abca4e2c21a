"""Album rules: the pure diffing, the album state, and the detection against the fake Immich
over real HTTP, with the requests and bytes it costs (deterministic, so asserted exactly)."""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sidecar.app import Sidecar
from sidecar.config.model import AlbumFilter, PeopleFilter, Rule, Secret
from sidecar.discord.status_text import watched_albums_line
from sidecar.engine.albums.resolve import resolve_album_refs, resolve_albums
from sidecar.engine.albums.watcher import (
    AlbumWatcher,
    detail_ranges,
    grown_buckets,
    listings_for,
)
from sidecar.engine.dispatch.dispatcher import RuleOptions, group_batches
from sidecar.engine.dry_run import dry_run
from sidecar.engine.rules.matching import RuleResolutionError, compile_rules
from sidecar.engine.store.albums import AlbumState
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import AlbumSummary, Asset, BucketAsset, Person, PersonRef
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef, Batch, Delivery
from sidecar.targets.discord.render.batch import render_batch
from tests.bench.album_cost import build_library
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.openapi import require_spec, validate_request, validate_response

V2 = (2, 7, 5)
V3 = (3, 1, 0)
OLD = datetime(2019, 7, 14, 10, 0, tzinfo=UTC)  # an old photo, uploaded long ago
KIB = 1024


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def summary(album_id: str, name: str, *, shared: bool = False) -> AlbumSummary:
    return AlbumSummary(album_id, name, 1, "2026-01-01T00:00:00.000Z", None, shared)


# -- pure parts ---------------------------------------------------------------------------------


def test_album_names_resolve_ignoring_case_and_problems_name_file_and_line():
    holiday = summary("0d1a7c2e-0000-4000-8000-000000000001", "Holiday 2026")
    twin_a = summary("0d1a7c2e-0000-4000-8000-000000000002", "Trip")
    twin_b = summary("0d1a7c2e-0000-4000-8000-000000000003", "trip")
    rules = [
        Rule(
            "holiday",
            ("stdout",),
            albums=AlbumFilter(("holiday 2026", holiday.id.upper()), (14, 14)),
        ),
        Rule(
            "bad",
            ("stdout",),
            albums=AlbumFilter(
                ("Holiday", "Trip", "0d1a7c2e-0000-4000-8000-00000000dead"), (20, 21, 22)
            ),
        ),
    ]
    resolved, problems = resolve_album_refs(rules, [holiday, twin_a, twin_b], "config.yaml")
    assert resolved["holiday"] == {holiday.id}
    assert problems == [
        "config.yaml:20: rules[1].albums.any[0]: no album called 'Holiday' in Immich "
        "(albums: 'Holiday 2026'); an album of that name may exist but not be visible to this "
        "key's user (owned by someone else and not shared with them)",
        "config.yaml:21: rules[1].albums.any[1]: 2 albums are called 'Trip' "
        f"({twin_a.id}, {twin_b.id}); rename one in Immich or use its id",
        "config.yaml:22: rules[1].albums.any[2]: no album with id "
        "0d1a7c2e-0000-4000-8000-00000000dead is visible to the API key (owned or shared "
        "with its user)",
    ]


def test_only_months_that_grew_are_fetched():
    old = {"2026-07-01": 10, "2019-07-01": 3, "2018-01-01": 2}
    new = {"2026-07-01": 10, "2019-07-01": 4, "2018-01-01": 1, "2015-05-01": 1}
    assert grown_buckets(old, new) == ["2019-07-01", "2015-05-01"]


def test_2x_lists_owned_and_shared_albums_apart_3x_in_one_call():
    def state(shared: bool) -> AlbumState:
        return AlbumState("a", "A", 1, "t", None, shared, {})

    owned, shared = {"o": state(False)}, {"s": state(True)}
    assert listings_for(False, ["o", "s"], owned | shared) == (None,)
    assert listings_for(True, ["o"], owned) == (None,)
    assert listings_for(True, ["s"], shared) == (True,)
    assert listings_for(True, ["o", "s"], owned | shared) == (None, True)
    assert listings_for(True, ["new"], {}) == (None, True)  # not seen yet: look everywhere


def test_new_members_taken_close_together_share_one_detail_search():
    def item(minutes: int) -> BucketAsset:
        return BucketAsset(
            str(minutes), "u", OLD + timedelta(minutes=minutes), True, "timeline", False
        )

    ranges = detail_ranges([item(0), item(50), item(30), item(200), item(24 * 60)])
    assert ranges == [
        (OLD, OLD + timedelta(minutes=50)),
        (OLD + timedelta(minutes=200), OLD + timedelta(minutes=200)),
        (OLD + timedelta(days=1), OLD + timedelta(days=1)),
    ]


def test_store_keeps_album_state_and_every_member_ever_seen(tmp_path):
    with_path = tmp_path / "state.db"
    store = Store.open(with_path)
    state = AlbumState("album-1", "Holiday", 2, "t1", None, True, {"2019-07-01": 2})
    store.save_album(state, ["a", "b"])
    store.close()
    store = Store.open(with_path)  # survives a restart
    assert store.album_states() == {"album-1": state}
    assert store.known_album_members("album-1", ["a", "c"]) == {"a"}
    store.save_album(replace(state, asset_count=1, buckets={"2019-07-01": 1}), [])
    assert store.known_album_members("album-1", ["a", "b"]) == {"a", "b"}  # removal forgets none
    assert store.forget_albums_except(["other"]) == 1
    assert store.album_states() == {} and store.known_album_members("album-1", ["a"]) == set()
    store.close()


def test_album_message_says_which_album_and_who_appears_and_links_into_it():
    album = AlbumRef("0d1a7c2e-0000-4000-8000-000000000001", "Holiday 2026")

    def asset(asset_id: str, *names: str) -> Asset:
        return Asset(
            asset_id,
            "IMAGE",
            OLD,
            OLD,
            f"{asset_id}.jpg",
            "timeline",
            False,
            tuple(PersonRef(f"p-{n}", n) for n in names),
        )

    deliveries = tuple(
        Delivery(i, "holiday", "family", a, album=album)
        for i, a in enumerate([asset("a1", "Alice"), asset("a2", "Bob", "Alice"), asset("a3")])
    )
    [message] = render_batch(Batch("holiday", "family", deliveries), "https://photos.test", {})
    assert message.content == "3 new photos in **Holiday 2026** — Alice and Bob"
    first = message.embeds[0]
    assert first["url"] == f"https://photos.test/albums/{album.id}/photos/a1"
    assert {
        "name": "Album",
        "value": f"[Holiday 2026](https://photos.test/albums/{album.id})",
        "inline": True,
    } in first["fields"]


# -- against the fake Immich ----------------------------------------------------------------


class Rig:
    """The poller with album rules, wired to a fake Immich over HTTP."""

    def __init__(self, immich: FakeImmich, store: Store, clock: Clock) -> None:
        self.immich, self.store, self.clock = immich, store, clock
        self.metrics = Metrics()
        self.client = ImmichClient(immich.url, Secret(immich.api_key), self.metrics, max_attempts=1)
        self.watcher = AlbumWatcher(self.client, store, self.metrics)
        self.poller = Poller(self.client, store, self.metrics, clock, self.watcher)
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.grandpa = immich.add_user("Grandpa")

    async def watch(self, rules: list[Rule]) -> Watch:
        people = {"Alice": self.alice, "Bob": self.bob}
        compiled = compile_rules(
            rules, lambda n: [Person(people[n], n)] if n in people else [], source="config.yaml"
        )
        compiled = await resolve_albums(self.client, rules, "config.yaml", compiled)
        targets = {r.name: r.targets for r in rules}
        return Watch(compiled, lambda n: targets[n], timedelta(hours=48), timedelta(minutes=2))

    async def poll(self, rules: list[Rule]) -> int:
        """One poll; returns how many deliveries it queued. Counts only the poll's requests."""
        watch = await self.watch(rules)
        self.immich.reset_requests()
        result = await self.poller.poll(watch)
        self.clock.now += timedelta(minutes=2)
        return result.queued

    def cost(self) -> tuple[int, int]:
        return len(self.immich.requests), sum(r.response_bytes for r in self.immich.requests)

    def album_rows(self) -> list[tuple[str, str, str | None]]:
        return [
            (d.rule, d.asset.id, d.album.name if d.album else None)
            for d in self.store.due(self.clock.now + timedelta(days=1))
        ]

    def old_photo(self, *people: str, **kw: object) -> str:
        return self.immich.add_asset(created_at=OLD, taken_at=OLD, people=people, **kw)


@pytest.fixture(params=[V2, V3], ids=["immich-2.7", "immich-3.1"])
async def rig(request, tmp_path):
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param) as immich:
        rig = Rig(immich, store, Clock())
        await rig.client.version()
        rig.poller.start_baseline([], backfill=timedelta(0))
        yield rig
        await rig.client.aclose()
    store.close()


def holiday_rule(**kw: object) -> Rule:
    return Rule("holiday", ("family",), albums=AlbumFilter(("holiday 2026",)), **kw)  # type: ignore[arg-type]


async def test_existing_members_are_the_baseline_then_an_old_photo_added_is_announced_once(rig):
    before = [rig.old_photo(rig.alice) for _ in range(3)]
    album = rig.immich.add_album("Holiday 2026", before)
    assert await rig.poll([holiday_rule()]) == 0  # the baseline
    assert await rig.poll([holiday_rule()]) == 0
    added = rig.old_photo(rig.bob)
    rig.immich.add_to_album(album, [added])
    assert await rig.poll([holiday_rule()]) == 1
    assert rig.album_rows() == [("holiday", added, "Holiday 2026")]
    assert await rig.poll([holiday_rule()]) == 0
    assert rig.album_rows() == [("holiday", added, "Holiday 2026")]
    # removed and added again: it was already delivered, nothing more
    rig.immich.remove_from_album(album, [added])
    assert await rig.poll([holiday_rule()]) == 0
    rig.immich.add_to_album(album, [added])
    assert await rig.poll([holiday_rule()]) == 0
    assert len(rig.album_rows()) == 1


async def test_a_library_photo_added_before_immich_read_it_is_announced_once_read(rig):
    """The month's count has it, its bucket does not (an inner join on exif): the month stays
    grown until extraction, which moves the album's lastModifiedAssetTimestamp."""
    album = rig.immich.add_album("Holiday 2026", [rig.old_photo(rig.alice) for _ in range(2)])
    assert await rig.poll([holiday_rule()]) == 0  # the baseline
    rig.immich.pause_extraction()
    [scanned] = rig.immich.library_scan(1, taken_at=OLD)
    rig.immich.add_to_album(album, [scanned])
    assert await rig.poll([holiday_rule()]) == 0
    assert await rig.poll([holiday_rule()]) == 0
    rig.immich.resume_extraction()
    await asyncio.sleep(0.01)
    assert await rig.poll([holiday_rule()]) == 1
    assert rig.album_rows() == [("holiday", scanned, "Holiday 2026")]
    assert await rig.poll([holiday_rule()]) == 0


async def test_another_users_asset_added_to_a_shared_album_is_announced_with_its_people(rig):
    album = rig.immich.add_album(
        "Holiday 2026", owner=rig.grandpa, shared_with=[rig.immich.key_user_id]
    )
    await rig.poll([holiday_rule()])
    theirs = rig.immich.add_asset(
        created_at=OLD, taken_at=OLD, people=[rig.alice], owner=rig.grandpa
    )
    rig.immich.add_to_album(album, [theirs])
    assert await rig.poll([holiday_rule()]) == 1
    [delivery] = rig.store.due(rig.clock.now)
    assert delivery.asset.id == theirs and [p.name for p in delivery.asset.people] == ["Alice"]
    assert delivery.album == AlbumRef(album, "Holiday 2026")


async def test_an_asset_added_to_another_album_announces_nothing(rig):
    rig.immich.add_album("Holiday 2026")
    other = rig.immich.add_album("Work")
    await rig.poll([holiday_rule()])
    rig.immich.add_to_album(other, [rig.old_photo(rig.alice)])
    assert await rig.poll([holiday_rule()]) == 0
    assert rig.album_rows() == []


async def test_people_and_asset_types_still_filter_an_album_rule(rig):
    album = rig.immich.add_album("Holiday 2026")
    rule = holiday_rule(people=PeopleFilter(any=("Alice",)))
    await rig.poll([rule])
    alice, bob = rig.old_photo(rig.alice), rig.old_photo(rig.bob)
    video = rig.old_photo(rig.alice, type="VIDEO")
    rig.immich.add_to_album(album, [alice, bob, video])
    videos = replace(rule, name="videos", asset_types=frozenset({"VIDEO"}))
    assert await rig.poll([rule, videos]) == 3
    assert sorted(rig.album_rows()) == sorted(
        [
            ("holiday", alice, "Holiday 2026"),
            ("holiday", video, "Holiday 2026"),
            ("videos", video, "Holiday 2026"),
        ]
    )


async def test_an_album_rule_does_not_fire_on_uploads(rig):
    rig.immich.add_album("Holiday 2026")
    await rig.poll([holiday_rule(people=PeopleFilter(any=("Alice",)))])
    rig.immich.add_asset(created_at=rig.clock.now, people=[rig.alice])
    assert await rig.poll([holiday_rule(people=PeopleFilter(any=("Alice",)))]) == 0


async def test_unknown_album_name_is_refused_with_candidates(rig):
    rig.immich.add_album("Holiday 2026")
    rule = Rule("x", ("family",), albums=AlbumFilter(("Holiday 2025",), (7,)))
    with pytest.raises(RuleResolutionError) as err:
        await rig.watch([rule])
    assert err.value.lines() == [
        "config.yaml:7: rules[0].albums.any[0]: no album called 'Holiday 2025' in Immich "
        "(albums: 'Holiday 2026'); an album of that name may exist but not be visible to this "
        "key's user (owned by someone else and not shared with them)"
    ]


# -- what detection costs (the budget) ----------------------------------------------


@pytest.mark.slow
async def test_an_idle_poll_costs_one_listing_more_than_without_album_rules(rig):
    build_library(rig.immich, rig.grandpa)  # 50 albums, one of 20,000 photos
    people = Rule("kids", ("family",), PeopleFilter(any=("Alice",)))
    await rig.poll([people])
    plain = rig.cost()
    albums = [people, Rule("all", ("family",), albums=AlbumFilter(("Everything",)))]
    await rig.poll(albums)  # the baseline: every month of the big album, once
    await rig.poll(albums)
    requests, size = rig.cost()
    assert requests == plain[0] + 1
    assert size - plain[1] <= 150 * KIB
    # 2.x lists albums shared with the key's user apart from its own
    mixed = [*albums, Rule("shared", ("family",), albums=AlbumFilter(("Shared 1",)))]
    await rig.poll(mixed)
    await rig.poll(mixed)
    requests, size = rig.cost()
    assert requests == plain[0] + (2 if rig.immich.version < (3, 0, 0) else 1)
    assert size - plain[1] <= 150 * KIB


@pytest.mark.slow
async def test_three_photos_added_to_a_20000_photo_album_cost_five_requests_at_most(rig):
    big = build_library(rig.immich, rig.grandpa)
    rules = [Rule("all", ("family",), albums=AlbumFilter(("Everything",)))]
    await rig.poll(rules)
    await rig.poll(rules)
    taken = datetime(2013, 5, 3, 15, 0, tzinfo=UTC)
    added = [
        rig.immich.add_asset(
            created_at=taken, taken_at=taken + timedelta(minutes=m), people=[rig.alice]
        )
        for m in (0, 7, 12)
    ]
    rig.immich.add_to_album(big, added)
    assert await rig.poll(rules) == 3
    requests, size = rig.cost()
    assert requests <= 5 and size <= 100 * KIB, (requests, size)
    assert {row[1] for row in rig.album_rows()} == set(added)


# -- the fake's album endpoints and the client's album requests, against both specs ---------

SPEC_FOR = {V2: "2.7.3", V3: "3.0.3"}


@pytest.mark.parametrize("version", list(SPEC_FOR), ids=lambda v: ".".join(map(str, v)))
async def test_album_requests_and_answers_match_the_spec_of_their_version(version, tmp_path):
    spec = require_spec(SPEC_FOR[version])
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=version) as immich:
        rig = Rig(immich, store, Clock())
        await rig.client.version()
        album = immich.add_album(
            "Holiday 2026",
            [rig.old_photo(rig.alice)],
            owner=rig.grandpa,
            shared_with=[immich.key_user_id],
        )
        immich.add_album("Mine", [rig.old_photo()])
        rules = [holiday_rule(), Rule("mine", ("family",), albums=AlbumFilter(("Mine",)))]
        await rig.poll(rules)
        theirs = immich.add_asset(
            created_at=OLD, taken_at=OLD, people=[rig.bob], owner=rig.grandpa, type="VIDEO"
        )
        immich.add_to_album(album, [theirs, rig.old_photo(rig.alice)])
        immich.reset_requests()
        assert (await rig.poller.poll(await rig.watch(rules))).queued == 2
        await rig.client.album_bucket(album, "2019-07-01")
        await rig.client.aclose()
        seen = set()
        for request in immich.requests:
            path = request.path
            validate_request(spec, request.method, path, request.query, request.json, None)
            seen.add((request.method, spec.find(request.method, path)[0]))
        # the answers, fetched again as the client asked for them
        async with httpx.AsyncClient(
            base_url=immich.url, headers={"x-api-key": immich.api_key}
        ) as http:
            for request in list(immich.requests):
                response = await http.request(
                    request.method, request.path, params=request.query, json=request.json
                )
                assert response.status_code == 200, response.text
                validate_response(spec, request.method, request.path, 200, response.json())
            response = await http.get(f"/api/albums/{album}")
            validate_response(spec, "GET", f"/api/albums/{album}", 200, response.json())
            # 2.x lists every member of an album (with its owner); 3.x lists none
            members = response.json().get("assets")
            assert (members is None) == (version >= (3, 0, 0))
            if members is not None:
                assert {a["ownerId"] for a in members} == {immich.key_user_id, rig.grandpa}
    store.close()
    expected = {
        ("GET", "/albums"),
        ("GET", "/timeline/buckets"),
        ("GET", "/timeline/bucket"),
        ("POST", "/search/metadata"),
    }
    if version < (3, 0, 0):  # 2.x: another user's asset is not found by the album search
        expected.add(("GET", "/assets/{id}"))
    assert seen == expected


async def test_the_fake_lists_and_searches_albums_as_each_version_does():
    for version in (V2, V3):
        async with FakeImmich(version=version) as immich:
            grandpa = immich.add_user("Grandpa")
            mine = immich.add_album("Mine")
            shared_by_me = immich.add_album("Ours", shared_with=[grandpa])
            theirs_asset = immich.add_asset(created_at=OLD, taken_at=OLD, owner=grandpa)
            own_asset = immich.add_asset(created_at=OLD, taken_at=OLD)
            shared_with_me = immich.add_album(
                "Theirs", [theirs_asset, own_asset], owner=grandpa, shared_with=[immich.key_user_id]
            )
            immich.add_album("Private", [immich.add_asset(owner=grandpa)], owner=grandpa)
            async with httpx.AsyncClient(
                base_url=f"{immich.url}/api", headers={"x-api-key": immich.api_key}
            ) as api:

                async def listed(**params: str) -> set[str]:
                    return {a["id"] for a in (await api.get("/albums", params=params)).json()}

                async def searched(album: str) -> set[str]:
                    body = {"albumIds": [album]}
                    answer = (await api.post("/search/metadata", json=body)).json()
                    return {a["id"] for a in answer["assets"]["items"]}

                before = (await api.get("/albums", params={"shared": "true"})).json()
                if version < (3, 0, 0):
                    assert await listed() == {mine, shared_by_me}
                    assert await listed(shared="true") == {shared_by_me, shared_with_me}
                    assert await searched(shared_with_me) == {own_asset}  # the key owner's only
                else:
                    everything = {mine, shared_by_me, shared_with_me}
                    assert await listed() == everything
                    assert await listed(shared="true") == everything  # ignored on 3.x
                    assert await listed(isShared="true") == {shared_by_me, shared_with_me}
                    assert await listed(isOwned="false") == {shared_with_me}
                    assert await searched(shared_with_me) == {theirs_asset, own_asset}
                # adding an untouched old photo moves updatedAt, not lastModifiedAssetTimestamp
                immich.add_to_album(
                    shared_with_me, [immich.add_asset(created_at=OLD, taken_at=OLD)]
                )
                after = (await api.get("/albums", params={"shared": "true"})).json()
                [old] = [a for a in before if a["id"] == shared_with_me]
                [new] = [a for a in after if a["id"] == shared_with_me]
                assert new["assetCount"] == old["assetCount"] + 1
                assert new["updatedAt"] > old["updatedAt"]
                assert new["lastModifiedAssetTimestamp"] == old["lastModifiedAssetTimestamp"]
                # another user's asset is readable through the shared album only
                assert (await api.get(f"/assets/{theirs_asset}")).status_code == 200
                private = immich.add_asset(owner=grandpa)
                assert (await api.get(f"/assets/{private}")).status_code == 400


async def test_the_poll_log_line_counts_in_words(rig, caplog):
    album = rig.immich.add_album("Holiday 2026", [rig.old_photo(rig.alice)])
    with caplog.at_level(logging.INFO, logger="sidecar.engine.albums.watcher"):
        await rig.poll([holiday_rule()])  # the baseline
        rig.immich.add_to_album(album, [rig.old_photo(rig.bob)])
        await rig.poll([holiday_rule()])
    said = [r.getMessage() for r in caplog.records]
    assert "album 'Holiday 2026': watching from now on; its 1 asset is the baseline" in said
    assert "albums: 1 of 1 watched changed, 1 asset added, 1 delivery queued" in said


# -- dry-run and /immich status ---------------------------------------------------------------


async def test_dry_run_shows_additions_the_sidecar_has_not_seen_and_writes_nothing(
    tmp_path, monkeypatch
):
    async with FakeImmich(version=V3) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        alice = immich.add_person("Alice")
        album = immich.add_album(
            "Holiday 2026", [immich.add_asset(created_at=OLD, taken_at=OLD, people=[alice])]
        )
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules=textwrap.dedent("""\
                         - name: holiday
                           albums: {any: [Holiday 2026]}
                           targets: [stdout]
                         """),
        )
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0
        assert (
            "album 'Holiday 2026': not watched yet; at the first poll its 1 asset becomes "
            "the baseline and nothing is announced"
        ) in out.getvalue()
        assert "--since does not apply to album rules" in out.getvalue()
        assert not (tmp_path / "state.db").exists()

        sidecar = Sidecar(path, stdout=io.StringIO())
        await sidecar.start()
        try:
            for _ in range(200):  # bounded: the first poll takes the baseline
                if sidecar.store.album_states():
                    break
                await asyncio.sleep(0.02)
            assert sidecar.status().albums == (("Holiday 2026", 1),)
        finally:
            await sidecar.stop()
        added = immich.add_asset(
            created_at=OLD, taken_at=OLD, people=[alice], file_name="grandma.jpg"
        )
        immich.add_to_album(album, [added])
        before = (tmp_path / "state.db").read_bytes()
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 3600.0, out) == 0
        text = out.getvalue()
        assert (
            "album 'Holiday 2026': 1 asset added since the sidecar last looked, 1 matching" in text
        )
        assert "holiday -> stdout: grandma.jpg (IMAGE) added to Holiday 2026 because" in text
        assert f"https://photos.example.test/albums/{album}/photos/{added}" in text
        # Album additions are counted apart: not "0 assets examined, 1 match".
        assert text.rstrip().splitlines()[-1] == (
            "new uploads: 0 assets examined, 0 matches; album additions: 1 asset not seen "
            "before, 1 match; 1 delivery would be sent"
        )
        assert (tmp_path / "state.db").read_bytes() == before


def test_status_lists_watched_albums_with_their_sizes():
    assert watched_albums_line([("Holiday 2026", 1204), ("Family", 1)]) == (
        "Watched albums: Holiday 2026 (1,204 assets) and Family (1 asset)"
    )
    many = [(f"A{n}", n) for n in range(12)]
    assert watched_albums_line(many).endswith("A9 (9 assets), and 2 more")


async def test_a_key_without_album_read_is_named_at_start(tmp_path, monkeypatch, caplog):
    permissions = ["asset.read", "asset.view", "asset.statistics", "person.read"]
    async with FakeImmich(version=V2, permissions=permissions) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.add_album("Holiday 2026")
        path = tmp_path / "config.yaml"
        rules = "- name: holiday\n  albums: {any: [Holiday 2026]}\n  targets: [stdout]\n"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules=rules,
        )
        sidecar = Sidecar(path, stdout=io.StringIO())
        await sidecar.start()
        await sidecar.stop()
    assert (
        "album rules are off: the Immich API key lacks album.read; add it to the key "
        "(Immich: Account settings > API keys)"
    ) in caplog.messages


def test_albums_in_the_config_keep_their_lines_and_bad_ones_are_schema_errors(tmp_path):
    from sidecar.config.loader import load_settings
    from sidecar.config.model import ConfigError

    text = textwrap.dedent("""\
        immich: {url: "http://immich:2283", api_key: k}
        targets: {stdout: {console: true}}
        rules:
          - name: holiday
            albums:
              any:
                - Holiday 2026
                - 0d1a7c2e-0000-4000-8000-000000000001
            targets: [stdout]
        """)
    path = tmp_path / "config.yaml"
    path.write_text(text)
    [rule] = load_settings(path, environ={}).rules
    assert rule.albums == AlbumFilter(("Holiday 2026", "0d1a7c2e-0000-4000-8000-000000000001"))
    assert rule.albums.lines == (7, 8)
    path.write_text(text.replace("      any:", "      all:"))
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert any(line.startswith(f"{path}:6: rules[0].albums") for line in err.value.lines())


async def test_an_album_named_by_a_rule_added_later_starts_from_a_baseline(rig):
    holiday = rig.immich.add_album("Holiday 2026")
    rig.immich.add_album("Family", [rig.old_photo(rig.alice), rig.old_photo(rig.bob)])
    await rig.poll([holiday_rule()])
    family = Rule("family", ("family",), albums=AlbumFilter(("Family",)))
    assert await rig.poll([holiday_rule(), family]) == 0  # Family's photos: the baseline
    added = rig.old_photo()
    rig.immich.add_to_album(holiday, [added])
    assert await rig.poll([holiday_rule(), family]) == 1
    assert sorted(rig.watcher.watched_albums()) == [("Family", 2), ("Holiday 2026", 1)]


def test_one_message_never_mixes_two_albums():
    def delivery(row: int, album: AlbumRef) -> Delivery:
        asset = Asset(f"a{row}", "IMAGE", OLD, OLD, "x.jpg", "timeline", False, ())
        return Delivery(row, "holiday", "family", asset, album=album)

    one, two = AlbumRef("1", "One"), AlbumRef("2", "Two")
    batches = group_batches(
        [delivery(1, one), delivery(2, two), delivery(3, one)], lambda _rule: RuleOptions()
    )
    assert [[d.id for d in b.deliveries] for b in batches] == [[1, 3], [2]]
