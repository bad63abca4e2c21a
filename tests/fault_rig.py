"""The fault-injection rig: the real sidecar process (through ``tests.fakes.run_sidecar``)
against a failing fake Immich and a failing fake Discord, killed and restarted at random, while
photos keep arriving and faces are recognised late. ``tests/test_faults.py`` drives it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.e2e_harness import SidecarProcess
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

ASSET_LINK = re.compile(r"/photos/([0-9a-fA-F-]{36})")
PERSON_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class WrappedSidecar(SidecarProcess):
    """``immich-sidecar run`` started through the wrapper that points discord.py at the fake."""

    MODULE = "tests.fakes.run_sidecar"

    async def start(self, wait_started: bool = True) -> None:
        self.spawned = time.monotonic()
        self.started_in: float | None = None  # seconds from spawn to its "started" line
        await super().start(wait_started)

    async def run_for(
        self, seconds: float, until: Callable[[], bool] = lambda: False
    ) -> int | None:
        """Let it run ``seconds`` or until ``until()`` holds; its exit code if it ended by
        itself before, else None."""
        assert self._proc
        deadline = time.monotonic() + seconds
        while self._proc.returncode is None and time.monotonic() < deadline and not until():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._proc.wait()), 0.01)
            if self.started_in is None and any(" started: " in line for line in self.stderr):
                self.started_in = time.monotonic() - self.spawned
        if self._proc.returncode is None:
            return None
        return await self._finish()


@dataclass
class Pace:
    """How long a sidecar takes to start on this machine now, against ``usual`` (an idle one):
    lifetimes before a kill are stretched alike, so that a kill lands as often in a start, and
    a sidecar gets as far, on a loaded machine as on an idle one (at most ``limit`` times)."""

    usual: float
    limit: float = 2.0
    starts: list[float] = field(default_factory=list)  # the last few, in seconds

    def saw(self, process: WrappedSidecar) -> None:
        """A sidecar was killed: how long did its start take (at least)?"""
        took = process.started_in
        if took is None:  # killed before it had started: it would have taken longer
            took = time.monotonic() - process.spawned
            if took <= max(self.starts, default=self.usual):
                return  # says nothing new
        self.starts = [*self.starts[-4:], took]

    def typical(self) -> float:
        """The median of the last few starts (``usual`` before the first)."""
        return sorted(self.starts)[len(self.starts) // 2] if self.starts else self.usual

    def stretch(self) -> float:
        return min(max(self.typical() / self.usual, 1.0), self.limit)


@dataclass
class Workload:
    """Photos arriving in Immich: some with a watched person at once, some recognised a few
    polls later, some that must never be announced."""

    immich: FakeImmich
    rng: random.Random
    watched: tuple[str, ...]  # person ids the rule watches
    other: str  # a person id the rule does not watch
    expected: list[str] = field(default_factory=list)  # assets that must reach every target
    unwanted: list[str] = field(default_factory=list)  # assets that must reach none
    late: list[tuple[float, str, str]] = field(default_factory=list)  # (due, asset, person)
    late_count: int = 0

    def upload_one(self) -> None:
        now = datetime.now(UTC)
        roll = self.rng.random()
        if roll < 0.45:
            person = self.rng.choice(self.watched)
            self.expected.append(self.immich.add_asset(created_at=now, people=[person]))
        elif roll < 0.75:  # faces recognised 1.5-6 s (a few polls) after the upload
            asset = self.immich.add_asset(created_at=now, people=[])
            due = time.monotonic() + self.rng.uniform(1.5, 6.0)
            self.late.append((due, asset, self.rng.choice(self.watched)))
            self.expected.append(asset)
            self.late_count += 1
        elif roll < 0.9:
            self.unwanted.append(self.immich.add_asset(created_at=now, people=[self.other]))
        else:
            self.unwanted.append(self.immich.add_asset(created_at=now, people=[]))

    def recognise_due(self, everything: bool = False) -> None:
        now = time.monotonic()
        waiting = []
        for due, asset, person in self.late:
            if everything or due <= now:
                self.immich.recognise(asset, person)
            else:
                waiting.append((due, asset, person))
        self.late = waiting

    async def run(self, stop: asyncio.Event, every: float = 0.5) -> None:
        while not stop.is_set():
            self.upload_one()
            self.recognise_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)


@dataclass
class ConfigEdits:
    """Config edits arriving during the faults. Edit n adds "Guest n" to the people the rule
    watches, and a photo of that guest is uploaded with it. The next edit waits until a sidecar
    has asked Immich for that guest's photos, which only the config of edit n (of those written
    so far) can make it do: so every edit took effect. Each guest's photo joins the deliveries
    that must arrive exactly once."""

    immich: FakeImmich
    workload: Workload
    rng: random.Random
    watch_guests: Callable[[list[str]], None]  # rewrites the config to watch these guests too
    count: int = 0
    unproven: int = 0  # edits the faults ended before a sidecar polled with them
    _searched: set[str] = field(default_factory=set)  # person ids polls asked for
    _requests_read: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        guests: list[str] = []
        while not stop.is_set():
            self.count += 1
            guests.append(f"Guest {self.count}")
            person = self.immich.add_person(guests[-1])
            self.watch_guests(guests)
            self.workload.expected.append(
                self.immich.add_asset(created_at=datetime.now(UTC), people=[person])
            )
            while not self._polled_for(person) and not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
            self.unproven += not self._polled_for(person)
            with contextlib.suppress(TimeoutError):
                # soon, while the sidecar that just polled likely still runs: it reloads
                await asyncio.wait_for(stop.wait(), self.rng.uniform(0.0, 0.5))

    def _polled_for(self, person_id: str) -> bool:
        new = self.immich.requests[self._requests_read :]
        self._requests_read += len(new)
        for request in new:
            if request.path == "/api/search/metadata":
                self._searched.update(PERSON_ID.findall(json.dumps(request.json)))
        return person_id in self._searched


def assets_in(payload: Any) -> set[str]:
    """Asset ids a message links to: a gallery's lines (components) or each embed link to
    their photo in Immich."""
    shown = [(payload or {}).get("embeds") or [], (payload or {}).get("components") or []]
    return set(ASSET_LINK.findall(json.dumps(shown)))


def count_assets(payloads: Iterable[Any]) -> Counter[str]:
    """How many messages show each asset."""
    counts: Counter[str] = Counter()
    for payload in payloads:
        counts.update(assets_in(payload))
    return counts


def bot_posts(discord: fd.FakeDiscord, channel_id: int) -> Counter[str]:
    return count_assets(m.payload for m in discord.messages_in(channel_id))


def webhook_posts(discord: fd.FakeDiscord, token: str) -> Counter[str]:
    return count_assets(
        r["payload"]
        for r in discord.interaction_responses
        if r["token"] == token and r["kind"] == "POST"
    )


def immich_faults(immich: FakeImmich) -> Counter[str]:
    """Faults the fake Immich injected, by kind; it answers 429/500/503 or nothing (status 0)
    only when told to fail."""
    names = {0: "timeout/drop", 429: "429", 500: "500", 503: "503"}
    return Counter(names[r.status] for r in immich.requests if r.status in names)


def lost_and_duplicated(posts: Counter[str], expected: Iterable[str]) -> tuple[list[str], int]:
    """Expected assets never posted, and the number of extra posts."""
    expected = list(expected)
    lost = [a for a in expected if posts[a] == 0]
    return lost, sum(max(posts[a] - 1, 0) for a in expected)


def describe(faults: Counter[str], requests: int) -> str:
    """E.g. "86 of 357 requests (24%: 429 21, 500 19, ...)"."""
    total = sum(faults.values())
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(faults.items()))
    return f"{total} of {requests} requests ({total / max(requests, 1):.0%}: {kinds})"
