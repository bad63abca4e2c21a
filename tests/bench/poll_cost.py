"""(a) What one poll costs: HTTP requests, response bytes and wall time, in-process against the
fake Immich on 127.0.0.1 (the approach of tests/test_poller.py).

The fake runs in the same process and event loop, so the wall time includes the fake's own
search and JSON work: it is an upper bound for the sidecar's share.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sidecar.config.model import PeopleFilter, Rule, Secret
from sidecar.engine.rules.matching import compile_rules
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.endpoints.search import SEARCH_PAGE_SIZE as PAGE_SIZE
from sidecar.immich.models import Person
from sidecar.ops.metrics import Metrics
from tests.bench.report import Figure
from tests.fakes.fake_immich import FakeImmich

V2 = (2, 7, 5)
V32 = (3, 2, 0)
LOOKBACK = timedelta(hours=48)
SETTLE = timedelta(minutes=2)
MATCHING_SHARE = 0.01
WALL_LIMIT = 3.0  # seconds for a poll over a 10,000-asset window

# A typical household: two watched people, and a rule on videos without Carol.
HOUSEHOLD = (
    Rule("kids", ("family",), PeopleFilter(any=("Alice", "Bob"))),
    Rule(
        "no-carol-videos",
        ("family",),
        PeopleFilter(none=("Carol",)),
        asset_types=frozenset({"VIDEO"}),
    ),
)
WATCHED_PEOPLE = 2
# The same plus a rule that needs nobody: every new asset is downloaded once, after settle.
WITH_STREAM = (*HOUSEHOLD, Rule("everything-but-carol", ("family",), PeopleFilter(none=("Carol",))))


@dataclass(frozen=True)
class PollCost:
    requests: int
    response_bytes: int
    seconds: float
    queued: int


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


class PollRig:
    """A fresh fake Immich, store and poller; ``with_window`` fills the look-back window."""

    def __init__(self, immich: FakeImmich, state: Path, rules: tuple[Rule, ...]) -> None:
        self.immich = immich
        self.clock = Clock()
        self.store = Store.open(state)
        self.client = ImmichClient(immich.url, Secret(immich.api_key), Metrics(), max_attempts=1)
        self.poller = Poller(self.client, self.store, Metrics(), self.clock)
        self.people = {name: immich.add_person(name) for name in ("Alice", "Bob", "Carol")}
        compiled = compile_rules(
            rules, lambda n: [Person(self.people[n], n)] if n in self.people else []
        )
        targets = {r.name: r.targets for r in rules}
        self.watch = Watch(compiled, lambda n: targets[n], LOOKBACK, SETTLE)
        self.poller.start_baseline(targets, backfill=timedelta(hours=1))

    def fill_window(self, size: int, others: tuple[str, ...] = ()) -> None:
        """``size`` assets uploaded now, 1% of them showing Alice; the others show ``others``.
        The next poll happens once they are settled, so rules needing nobody see them too."""
        matching = round(size * MATCHING_SHARE)
        when = self.clock.now
        self.clock.now += SETTLE
        others_ids = [self.people[n] for n in others]
        self.immich.add_assets_bulk(size - matching, created_at=when, people=others_ids)
        self.immich.add_assets_bulk(matching, created_at=when, people=[self.people["Alice"]])

    async def measured_poll(self) -> PollCost:
        self.clock.now += timedelta(seconds=2)
        self.immich.reset_requests()
        started = time.perf_counter()
        result = await self.poller.poll(self.watch)
        seconds = time.perf_counter() - started
        requests = self.immich.requests
        return PollCost(
            len(requests), sum(r.response_bytes for r in requests), seconds, result.queued
        )

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


async def measure(
    version: tuple[int, int, int],
    window: int,
    runs: int,
    rules: tuple[Rule, ...] = HOUSEHOLD,
    others: tuple[str, ...] = (),
) -> list[PollCost]:
    """``runs`` polls, each by a sidecar that has polled once (idle) before the window filled."""
    costs = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            async with FakeImmich(version=version) as immich:
                rig = PollRig(immich, Path(tmp) / "state.db", rules)
                try:
                    await rig.measured_poll()  # connection open, cursors set
                    if window:
                        rig.fill_window(window, others)
                    costs.append(await rig.measured_poll())
                finally:
                    await rig.close()
    return costs


EVERYTHING = (Rule("everything", ("family",), PeopleFilter()),)
LIBRARY_BATCH = 1_100


async def measure_library(version: tuple[int, int, int]) -> tuple[PollCost, PollCost]:
    """An external library's batch of 1,100 (one createdAt, no exif until extraction) over a
    library of 10,000: a poll while extraction is held, then the poll after it ran."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeImmich(version=version) as immich:
            rig = PollRig(immich, Path(tmp) / "state.db", EVERYTHING)
            immich.clock = rig.clock
            try:
                immich.add_assets_bulk(10_000, created_at=rig.clock.now - timedelta(days=30))
                await rig.measured_poll()
                immich.pause_extraction()
                immich.library_scan(LIBRARY_BATCH, created_at=rig.clock.now)
                rig.clock.now += SETTLE
                await rig.measured_poll()  # the window passes the unread batch
                waiting = await rig.measured_poll()
                immich.resume_extraction()
                rig.clock.now += timedelta(seconds=5)
                decided = await rig.measured_poll()
            finally:
                await rig.close()
    return waiting, decided


def idle_budget(version: tuple[int, int, int]) -> int:
    """One search per watched person before 3.2 (personIds means ALL), one for all of them with
    3.2's filter; plus one for newly created assets."""
    return (1 if version >= V32 else WATCHED_PEOPLE) + 1


def _label(version: tuple[int, int, int]) -> str:
    return "immich " + ".".join(map(str, version))


def _cost(costs: list[PollCost]) -> tuple[int, int, float, int]:
    """Requests and bytes are deterministic (checked); wall time is the median."""
    requests = {c.requests for c in costs}
    if len(requests) != 1:
        raise RuntimeError(f"request counts differ between identical runs: {sorted(requests)}")
    return (
        costs[0].requests,
        max(c.response_bytes for c in costs),
        statistics.median(c.seconds for c in costs),
        costs[0].queued,
    )


async def run(section: str = "poll") -> list[Figure]:
    figures = []
    for version in (V2, V32):
        label = _label(version)
        budget = idle_budget(version)
        requests, size, seconds, _ = _cost(await measure(version, 0, runs=5))
        figures.append(
            Figure(
                section,
                f"{label}: idle poll",
                f"{requests} req, {size} B, {seconds * 1000:.1f} ms",
                f"<= {budget} req",
                requests <= budget,
            )
        )
        for window in (1_000, 10_000):
            requests, size, seconds, queued = _cost(await measure(version, window, runs=3))
            allowed = budget + math.ceil(window * MATCHING_SHARE / PAGE_SIZE)
            within = requests <= allowed and (window < 10_000 or seconds <= WALL_LIMIT)
            target = f"<= {allowed} req" + (f", <= {WALL_LIMIT:g} s" if window >= 10_000 else "")
            figures.append(
                Figure(
                    section,
                    f"{label}: window of {window:,} new, 1% match ({queued} queued)",
                    f"{requests} req, {size:,} B, {seconds * 1000:.0f} ms (median of 3)",
                    target,
                    within,
                )
            )
        requests, size, seconds, queued = _cost(
            await measure(version, 10_000, runs=3, rules=WITH_STREAM, others=("Carol",))
        )
        figures.append(
            Figure(
                section,
                f"{label}: window of 10,000, + a rule needing nobody ({queued} queued)",
                f"{requests} req, {size:,} B, {seconds * 1000:.0f} ms (median of 3)",
                "downloads each new asset once",
                None,
            )
        )
        waiting, decided = await measure_library(version)
        figures.append(
            Figure(
                section,
                f"{label}: library scan of {LIBRARY_BATCH:,}, extraction held (each poll)",
                f"{waiting.requests} req, {waiting.response_bytes:,} B",
                "small, whatever the batch",
                waiting.requests <= 3 and waiting.response_bytes < 1_000,
            )
        )
        figures.append(
            Figure(
                section,
                f"{label}: the poll after extraction ({decided.queued} queued)",
                f"{decided.requests} req, {decided.response_bytes:,} B, "
                f"{decided.seconds * 1000:.0f} ms",
                f"all {LIBRARY_BATCH:,} once",
                decided.queued == LIBRARY_BATCH,
            )
        )
    return figures
