"""The poller against the fake Immich over real HTTP: what is queued, and what a poll costs.

Request and byte counts are the budget of the watch-engine issue; they are deterministic, so
they are asserted exactly here (benchmarks report the wall time).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from sidecar.config.model import PeopleFilter, Rule, Secret
from sidecar.engine.rules.matching import compile_rules
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Person
from sidecar.ops.metrics import Metrics
from tests.fakes.fake_immich import FakeImmich

V2 = (2, 7, 5)
V32 = (3, 2, 0)
LOOKBACK = timedelta(hours=48)
SETTLE = timedelta(minutes=2)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


class Rig:
    """A poller wired to a fake Immich, with the rules of a typical household."""

    def __init__(self, immich: FakeImmich, store: Store, clock: Clock) -> None:
        self.immich, self.store, self.clock = immich, store, clock
        self.metrics = Metrics()
        self.client = ImmichClient(immich.url, Secret(immich.api_key), self.metrics, max_attempts=1)
        self.poller = Poller(self.client, store, self.metrics, clock)
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.carol = immich.add_person("Carol")
        self.rules = [
            Rule("kids", ("family",), PeopleFilter(any=("Alice", "Bob"))),
            Rule(
                "no-carol-videos",
                ("family",),
                PeopleFilter(none=("Carol",)),
                asset_types=frozenset({"VIDEO"}),
            ),
        ]

    def watch(self, rules: list[Rule] | None = None) -> Watch:
        people = {"Alice": self.alice, "Bob": self.bob, "Carol": self.carol}
        compiled = compile_rules(
            rules or self.rules, lambda n: [Person(people[n], n)] if n in people else []
        )
        targets = {r.name: r.targets for r in (rules or self.rules)}
        return Watch(compiled, lambda n: targets[n], LOOKBACK, SETTLE)

    async def poll(self, rules: list[Rule] | None = None):
        self.immich.reset_requests()
        return await self.poller.poll(self.watch(rules))

    def searches(self):
        return [r for r in self.immich.requests if r.path == "/api/search/metadata"]

    def queued(self) -> set[tuple[str, str]]:
        return {(r.rule, r.asset_id) for r in self.store.rows()}

    def photo(self, *people: str, ago: timedelta = timedelta(minutes=10), **kw) -> str:
        return self.immich.add_asset(created_at=self.clock.now - ago, people=people, **kw)


@pytest.fixture(params=[V2, V32], ids=["immich-2.7", "immich-3.2"])
async def rig(request, tmp_path):
    clock = Clock()
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param) as immich:
        rig = Rig(immich, store, clock)
        await rig.client.version()  # as the sidecar does at start
        rig.poller.start_baseline([r.name for r in rig.rules], backfill=timedelta(hours=1))
        yield rig
        await rig.client.aclose()
    store.close()


def idle_budget(rig: Rig) -> int:
    """One search per watched person before 3.2 (personIds means ALL), one for all of them
    with 3.2's filter; plus one for newly created assets."""
    return (1 if rig.immich.version >= V32 else 2) + 1


async def test_idle_poll_costs_a_handful_of_small_requests(rig):
    result = await rig.poll()
    assert result.queued == 0
    assert len(rig.immich.requests) == idle_budget(rig)
    assert sum(r.response_bytes for r in rig.immich.requests) < 2_000


async def test_one_new_matching_asset_costs_no_extra_request(rig):
    asset = rig.photo(rig.alice)
    result = await rig.poll()
    assert rig.queued() == {("kids", asset)}
    assert result.queued == 1
    assert len(rig.immich.requests) == idle_budget(rig)


async def test_the_poll_line_counts_one_delivery_in_the_singular(rig, caplog):
    caplog.set_level(logging.INFO, logger="sidecar.engine.uploads.poller")
    rig.photo(rig.alice)
    await rig.poll([Rule("kids", ("family",), PeopleFilter(any=("Alice",)))])
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll:")]
    assert line.endswith(" examined, 1 new delivery queued"), line
    assert "1 assets" not in line


async def test_bulk_import_of_non_matching_assets_costs_what_an_idle_poll_costs(rig):
    await rig.poll()
    idle_bytes = sum(r.response_bytes for r in rig.immich.requests)
    rig.immich.add_assets_bulk(10_000, created_at=rig.clock.now - timedelta(minutes=30))
    rig.clock.advance(minutes=1)
    await rig.poll()
    assert len(rig.immich.requests) == idle_budget(rig)
    assert sum(r.response_bytes for r in rig.immich.requests) <= idle_bytes + 200
    assert rig.queued() == set()


async def test_matching_share_of_a_bulk_import_costs_its_pages_only(rig):
    rig.immich.add_assets_bulk(9_900, created_at=rig.clock.now - timedelta(minutes=30))
    matching = rig.immich.add_assets_bulk(
        100, created_at=rig.clock.now - timedelta(minutes=30), people=[rig.alice]
    )
    await rig.poll()
    assert {a for _, a in rig.queued()} == set(matching)
    assert len(rig.immich.requests) == idle_budget(rig)
    assert all(len((r.json or {}).get("personIds", [])) <= 1 for r in rig.searches())


async def test_large_matching_set_is_paged_by_a_thousand(rig):
    matching = rig.immich.add_assets_bulk(
        2_500, created_at=rig.clock.now - timedelta(minutes=30), people=[rig.bob]
    )
    await rig.poll()
    assert len(rig.queued()) == len(matching)
    assert all((r.json or {}).get("size") == 1000 for r in rig.searches())
    assert len(rig.immich.requests) == idle_budget(rig) + 2  # Bob's results take 3 pages


async def test_an_import_taken_at_one_moment_is_queued_whole_though_ties_change_order(rig):
    """Immich 2.x returns assets taken at the same moment in any order (the fake: a new one on
    each request); paging by offset lost some of 1,100 such uploads for good."""
    taken = rig.clock.now - timedelta(days=30)
    videos = rig.immich.add_assets_bulk(
        1_100, type="VIDEO", created_at=rig.clock.now - timedelta(minutes=30), taken_at=taken
    )
    photos = rig.immich.add_assets_bulk(
        1_100, people=[rig.alice], created_at=rig.clock.now - timedelta(minutes=20), taken_at=taken
    )
    result = await rig.poll()
    assert rig.queued() == (
        {("no-carol-videos", v) for v in videos} | {("kids", p) for p in photos}
    )
    assert result.queued == 2_200 and result.assets_seen == 2_200
    print(f"{rig.immich.version}: {len(rig.searches())} searches for 2,200 tied assets")


async def test_person_recognised_after_the_first_polls_is_delivered(rig):
    asset = rig.photo(ago=timedelta(minutes=5))
    await rig.poll()
    rig.clock.advance(minutes=2)
    await rig.poll()
    assert rig.queued() == set()
    rig.clock.advance(minutes=40)
    rig.immich.recognise(asset, rig.bob)  # does not touch updatedAt
    await rig.poll()
    assert rig.queued() == {("kids", asset)}


async def test_seen_again_every_poll_but_queued_once(rig):
    rig.photo(rig.alice, rig.bob)
    for _ in range(3):
        await rig.poll()
        rig.clock.advance(minutes=2)
    assert len(rig.store.rows()) == 1


async def test_non_matching_and_hidden_assets_are_not_queued(rig):
    rig.photo(rig.carol)
    rig.photo(rig.alice, visibility="archive")
    rig.photo(rig.alice, trashed=True)
    rig.photo(type="IMAGE")  # no-carol-videos wants videos only
    await rig.poll()
    assert rig.queued() == set()


async def test_rules_without_people_decide_once_after_settle(rig):
    fresh = rig.photo(type="VIDEO", ago=timedelta(seconds=30))
    with_carol = rig.photo(rig.carol, type="VIDEO", ago=timedelta(seconds=30))
    await rig.poll()
    assert rig.queued() == set()  # not settled yet: faces may still be recognised
    rig.clock.advance(minutes=2)
    await rig.poll()
    assert rig.queued() == {("no-carol-videos", fresh)}
    rig.immich.reset_requests()
    rig.clock.advance(minutes=2)
    await rig.poll()
    stream = [
        r
        for r in rig.immich.requests
        if r.path in ("/api/search/metadata", "/api/search/statistics")
        and "personIds" not in (r.json or {})
        and "filter" not in (r.json or {})
    ]
    # The next poll asks only for what was created since: decided assets are not fetched again.
    assert stream and all(
        r.json and r.json["createdAfter"] > _iso(rig.clock.now - SETTLE * 3) for r in stream
    )
    assert with_carol not in {a for _, a in rig.queued()}


async def test_a_none_exclusion_waits_for_settle_on_person_rules(rig):
    rules = [Rule("alice-not-bob", ("family",), PeopleFilter(any=("Alice",), none=("Bob",)))]
    await rig.poll(rules)  # the rule starts watching now
    asset = rig.photo(rig.alice, ago=timedelta(seconds=0))
    rig.clock.advance(seconds=10)
    await rig.poll(rules)
    assert rig.queued() == set()
    rig.clock.advance(minutes=3)
    await rig.poll(rules)
    assert rig.queued() == {("alice-not-bob", asset)}


async def test_history_before_the_first_start_is_not_announced(rig):
    before = rig.photo(rig.alice, ago=timedelta(hours=2))  # backfill is 1h in this rig
    within = rig.photo(rig.alice, ago=timedelta(minutes=50))
    await rig.poll()
    assert rig.queued() == {("kids", within)}
    assert before not in {a for _, a in rig.queued()}


async def test_a_rule_added_later_starts_from_when_it_was_added(rig):
    old = rig.photo(rig.carol, ago=timedelta(minutes=20))
    rules = [*rig.rules, Rule("carol", ("family",), PeopleFilter(any=("Carol",)))]
    await rig.poll(rules)
    new = rig.photo(rig.carol, ago=timedelta(seconds=0))
    rig.clock.advance(seconds=1)
    await rig.poll(rules)
    assert rig.queued() == {("carol", new)}
    assert old not in {a for _, a in rig.queued()}


async def test_an_outage_longer_than_the_lookback_loses_nothing(rig):
    await rig.poll()
    rig.clock.advance(hours=72)  # Immich (or the sidecar) was down for three days
    asset = rig.photo(rig.bob, ago=timedelta(hours=60))  # uploaded during the outage
    await rig.poll()
    assert rig.queued() == {("kids", asset)}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
