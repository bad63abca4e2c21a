"""(f) What album rules cost a poll: requests, response bytes and wall time, in-process against
the fake Immich on 127.0.0.1 (as tests/test_albums.py counts them), with 50 albums of which one
holds 20,000 photos spread over twenty years.

The fake runs in the same process and event loop, so the wall time includes its own work.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sidecar.config.model import AlbumFilter, PeopleFilter, Rule, Secret
from sidecar.engine.albums.resolve import resolve_albums
from sidecar.engine.albums.watcher import AlbumWatcher
from sidecar.engine.rules.matching import compile_rules
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Person
from sidecar.ops.metrics import Metrics
from tests.bench.report import Figure
from tests.fakes.fake_immich import FakeImmich

V2 = (2, 7, 5)
V3 = (3, 2, 0)
ALBUMS = 50
BIG = 20_000
MONTHS = 240  # twenty years, about 83 photos a month
OLD = datetime(2019, 7, 14, 10, 0, tzinfo=UTC)
KIB = 1024

PEOPLE_ONLY = (Rule("kids", ("family",), PeopleFilter(any=("Alice",))),)
ALBUM_ONLY = (Rule("everything", ("family",), albums=AlbumFilter(("Everything",))),)
BIG_ALBUM = (*PEOPLE_ONLY, *ALBUM_ONLY)
MIXED = (*BIG_ALBUM, Rule("shared", ("family",), albums=AlbumFilter(("Shared 1",))))


def build_library(immich: FakeImmich, other_user: str) -> str:
    """49 small albums (every other one owned by ``other_user`` and shared with the key's
    user) and "Everything", 20,000 photos over twenty years; returns Everything's id."""
    big: list[str] = []
    for month in range(MONTHS):
        taken = datetime(2006 + month // 12, month % 12 + 1, 10, 12, tzinfo=UTC)
        big += immich.add_assets_bulk(
            BIG // MONTHS + (1 if month < BIG % MONTHS else 0), created_at=taken, taken_at=taken
        )
    big_album = immich.add_album("Everything", big)
    for n in range(ALBUMS - 1):
        members = immich.add_assets_bulk(5, created_at=OLD, taken_at=OLD)
        if n % 2:
            immich.add_album(
                f"Shared {n}", members, owner=other_user, shared_with=[immich.key_user_id]
            )
        else:
            immich.add_album(f"Album {n}", members)
    return big_album


@dataclass(frozen=True)
class Cost:
    requests: int
    response_bytes: int
    seconds: float
    queued: int

    def text(self) -> str:
        return f"{self.requests} req, {self.response_bytes:,} B, {self.seconds * 1000:.1f} ms"


class AlbumRig:
    def __init__(self, immich: FakeImmich, state: Path) -> None:
        self.immich = immich
        self.now = datetime.now(UTC)
        self.store = Store.open(state)
        self.metrics = Metrics()
        self.client = ImmichClient(immich.url, Secret(immich.api_key), self.metrics, max_attempts=1)
        watcher = AlbumWatcher(self.client, self.store, self.metrics)
        self.poller = Poller(self.client, self.store, self.metrics, lambda: self.now, watcher)
        self.alice = immich.add_person("Alice")
        self.big = build_library(immich, immich.add_user("Grandpa"))
        self.poller.start_baseline([], backfill=timedelta(0))

    async def poll(self, rules: tuple[Rule, ...]) -> Cost:
        compiled = compile_rules(rules, lambda n: [Person(self.alice, n)] if n == "Alice" else [])
        compiled = await resolve_albums(self.client, rules, "bench", compiled)
        targets = {r.name: r.targets for r in rules}
        watch = Watch(compiled, lambda n: targets[n], timedelta(hours=48), timedelta(minutes=2))
        self.now += timedelta(minutes=2)
        self.immich.reset_requests()
        started = time.perf_counter()
        result = await self.poller.poll(watch)
        seconds = time.perf_counter() - started
        requests = self.immich.requests
        return Cost(len(requests), sum(r.response_bytes for r in requests), seconds, result.queued)

    def add_three(self) -> None:
        taken = datetime(2013, 5, 3, 15, 0, tzinfo=UTC)
        added = [
            self.immich.add_asset(
                created_at=taken, taken_at=taken + timedelta(minutes=m), people=[self.alice]
            )
            for m in (0, 7, 12)
        ]
        self.immich.add_to_album(self.big, added)

    async def close(self) -> None:
        await self.client.aclose()
        self.store.close()


def _median(costs: list[Cost]) -> Cost:
    if len({(c.requests, c.response_bytes) for c in costs}) != 1:
        raise RuntimeError("album poll costs differ between identical runs")
    return Cost(
        costs[0].requests,
        costs[0].response_bytes,
        statistics.median(c.seconds for c in costs),
        costs[0].queued,
    )


async def measure(version: tuple[int, int, int], runs: int = 3) -> dict[str, Cost]:
    results: dict[str, list[Cost]] = {}
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            async with FakeImmich(version=version) as immich:
                rig = AlbumRig(immich, Path(tmp) / "state.db")
                try:
                    await rig.client.version()  # as the sidecar does at start
                    await rig.poll(PEOPLE_ONLY)
                    costs = {
                        "without": await rig.poll(PEOPLE_ONLY),
                        "baseline": await rig.poll(BIG_ALBUM),
                        "idle": await rig.poll(BIG_ALBUM),
                    }
                    await rig.poll(MIXED)
                    costs["mixed"] = await rig.poll(MIXED)
                    await rig.poll(ALBUM_ONLY)
                    rig.add_three()
                    costs["three"] = await rig.poll(ALBUM_ONLY)
                finally:
                    await rig.close()
        for name, cost in costs.items():
            results.setdefault(name, []).append(cost)
    return {name: _median(costs) for name, costs in results.items()}


async def run(section: str = "albums") -> list[Figure]:
    figures = []
    for version in (V2, V3):
        label = "immich " + ".".join(map(str, version))
        cost = await measure(version)
        without, idle, mixed = cost["without"], cost["idle"], cost["mixed"]
        figures.append(
            Figure(
                section,
                f"{label}: album rule on a 20,000-photo album, first poll (baseline)",
                cost["baseline"].text() + " (once)",
                "every month fetched once",
                None,
            )
        )
        extra = idle.requests - without.requests
        extra_bytes = idle.response_bytes - without.response_bytes
        figures.append(
            Figure(
                section,
                f"{label}: idle poll, 50 albums, vs. no album rule",
                f"+{extra} req, +{extra_bytes:,} B ({idle.text()})",
                "<= +1 req, +150 KiB",
                extra <= 1 and extra_bytes <= 150 * KIB,
            )
        )
        allowed = 2 if version < (3, 0, 0) else 1
        extra = mixed.requests - without.requests
        extra_bytes = mixed.response_bytes - without.response_bytes
        figures.append(
            Figure(
                section,
                f"{label}: idle poll, owned + shared albums watched",
                f"+{extra} req, +{extra_bytes:,} B ({mixed.text()})",
                f"<= +{allowed} req, +150 KiB",
                extra <= allowed and extra_bytes <= 150 * KIB,
            )
        )
        three = cost["three"]
        figures.append(
            Figure(
                section,
                f"{label}: 3 photos added to the 20,000-photo album, album rule only "
                f"({three.queued} queued)",
                three.text() + " (median of 3)",
                "<= 5 req, <= 100 KiB",
                three.requests <= 5 and three.response_bytes <= 100 * KIB,
            )
        )
    return figures
