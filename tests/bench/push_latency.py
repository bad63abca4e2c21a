"""(g) Upload -> message latency with Immich push and fast polls (issue 18), in real time.

The real sidecar process with the defaults (``poll.interval`` 2m, ``settle`` 2m, fast polls
every 5s for 3m; time is NOT scaled down) against the fake Immich:

- 3.1.0 with push (a workflow on ``AssetMetadataExtraction``), a rule without people;
- 3.1.0 with push, a rule with people, the face recognised 20 s after each upload;
- 2.7.5 without push (2.x has no webhook action), the same people rule, fast polls only;
- 3.1.0 without push, the rule without people (the default config: nothing but polls).

30 uploads, one every 2 s (a phone's backup of a short burst), each measured from its upload to
its line on the sidecar's stdout. Idle cost: requests and bytes of one idle poll (interval 1s),
and of an idle hour per account at the defaults (regular polls and new-upload checks, counted
over a minute with the interval at 10 s and scaled to the defaults).
A sidecar without ``push:`` in its schema (main before issue 18) runs the same configs without the
push block: the "before" figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.bench.report import Figure, table
from tests.bench.sidecar_process import TimedSidecar
from tests.e2e_harness import REPO, free_port, write_config
from tests.fakes.fake_immich import FakeImmich, RecordedRequest

V2 = (2, 7, 5)
V31 = (3, 1, 0)
UPLOADS = 30
GAP = 2.0  # seconds between uploads
FACE_AFTER = 20.0  # seconds from an upload to its face being recognised
WAIT = 600.0  # seconds the slowest delivery may take (main: settle + interval)
SECRET = "bench-push-secret-0123456789"
# Whether the sidecar this checkout runs knows ``push:`` (its schema is the one source of truth).
HAS_PUSH = '"push"' in (REPO / "sidecar" / "config.schema.json").read_text()
EVERYTHING = "- {name: everything, targets: [stdout]}"
ALICE = textwrap.dedent("""\
    - name: alice
      people: {any: [Alice]}
      targets: [stdout]
    """)


@contextlib.asynccontextmanager
async def running(
    version: tuple[int, int, int],
    rules: str,
    *,
    push: bool,
    interval: str = "2m",
    backfill: str = "0s",
) -> AsyncIterator[tuple[FakeImmich, TimedSidecar, dict[str, str]]]:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeImmich(version=version) as immich:
            people = {name: immich.add_person(name) for name in ("Alice", "Bob")}
            config = Path(tmp) / "config.yaml"
            metrics_port, push_port = free_port(), free_port()
            extra = ""
            if push and HAS_PUSH:
                extra = f"push:\n  listen: 127.0.0.1:{push_port}\n  secret: {SECRET}\n"
                await _workflow(immich, f"http://127.0.0.1:{push_port}/hooks/immich")
            write_config(
                config,
                immich_url=immich.url,
                state=Path(tmp) / "state.db",
                rules=rules,
                interval=interval,
                settle="2m",
                lookback="48h",
                backfill=backfill,
                metrics_port=metrics_port,
                extra=extra,
            )
            sidecar = TimedSidecar(config, {"IMMICH_API_KEY": immich.api_key}, metrics_port)
            await sidecar.start()
            try:
                await sidecar.wait_for_metric(
                    "immich_sidecar_poll_runs_total", 'result="success"', 1
                )
                yield immich, sidecar, people
            finally:
                await sidecar.stop()


async def _workflow(immich: FakeImmich, url: str) -> None:
    step = {
        "method": "immich-plugin-core#webhook",
        "config": {
            "url": url,
            "method": "POST",
            "headerName": "X-Immich-Sidecar-Secret",
            "headerValue": SECRET,
        },
    }
    async with httpx.AsyncClient(
        base_url=f"{immich.url}/api", headers={"x-api-key": immich.api_key}
    ) as http:
        body = {"name": "bench", "trigger": "AssetMetadataExtraction", "enabled": True}
        await http.post("/workflows", json=body | {"steps": [step]})


async def _arrival(sidecar: TimedSidecar, asset: str) -> float:
    await sidecar.wait_until(lambda: bool(sidecar.delivered(asset)), asset, limit=WAIT)
    times = sidecar.arrivals[id(sidecar.stdout)]
    return next(times[i] for i, line in enumerate(sidecar.stdout) if asset in line)


async def latencies(
    version: tuple[int, int, int], rules: str, *, push: bool, face: bool
) -> tuple[list[float], float]:
    """Upload -> line for each upload; and the fast polls the run made."""
    async with running(version, rules, push=push) as (immich, sidecar, people):

        async def one(index: int) -> float:
            await asyncio.sleep(index * GAP)
            uploaded = time.monotonic()
            asset = immich.add_asset(created_at=datetime.now(UTC), unrecognised_faces=int(face))
            if face:
                await asyncio.sleep(FACE_AFTER)
                immich.recognise(asset, people["Alice"])
            return await _arrival(sidecar, asset) - uploaded

        samples = await asyncio.gather(*(one(i) for i in range(UPLOADS)))
        fast = await sidecar.metric("immich_sidecar_fast_polls_total", 'result="success"')
    return list(samples), fast


# The config of the idle hour: a people rule and a rule without people, one account.
BOTH = ALICE + EVERYTHING + "\n"
DEFAULT_INTERVAL = 120.0
IDLE_SPAN_POLLS = 6  # regular polls (10 s apart) over which the idle hour is counted


def is_check(request: RecordedRequest) -> bool:
    """A new-upload check (issue 23): a count of what was created (or changed) since, with no
    upper bound; a poll's counts are of a span of creation times."""
    body = request.json if isinstance(request.json, dict) else {}
    return request.path == "/api/search/statistics" and "createdBefore" not in body


async def idle_hour(version: tuple[int, int, int], push: bool = False) -> tuple[float, float, str]:
    """Requests and bytes of an idle hour of one account at the defaults (2 m interval, checks
    every 5 s): the regular polls' and the checks' requests counted apart over a minute of an
    idle sidecar polling every 10 s, then scaled to 30 polls and 720 checks an hour."""
    # A backfill puts the cursors where a sidecar running for a while has them: the settled
    # pass counts from the first poll on (a fresh one waits `settle` before its first count).
    async with running(version, BOTH, push=push, interval="10s", backfill="1h") as (
        immich,
        sidecar,
        _,
    ):
        await sidecar.wait_for_polls(1)
        immich.reset_requests()
        before = await sidecar.successful_polls()
        started = time.monotonic()
        for _ in range(IDLE_SPAN_POLLS):  # one at a time: each wait is bounded
            await sidecar.wait_for_polls(1)
        span = time.monotonic() - started
        polls = await sidecar.successful_polls() - before
        requests = immich.api_requests()
    checks = [r for r in requests if is_check(r)]
    rest = [r for r in requests if not is_check(r)]
    per_poll = len(rest) / polls
    poll_bytes = sum(r.response_bytes for r in rest) / polls
    check_bytes = sum(r.response_bytes for r in checks) / len(checks) if checks else 0.0
    checks_an_hour = len(checks) / span * 3600  # each check is one request
    polls_an_hour = 3600 / DEFAULT_INTERVAL
    hour = polls_an_hour * per_poll + checks_an_hour
    hour_bytes = polls_an_hour * poll_bytes + checks_an_hour * check_bytes
    detail = (
        f"{polls_an_hour:.0f} polls x {per_poll:.1f} req + {checks_an_hour:.0f} checks "
        f"({len(checks)} seen in {span:.0f} s)"
    )
    return hour, hour_bytes, detail


def p50_p95(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s (n={len(ordered)})"


async def idle_cost(version: tuple[int, int, int], push: bool = False) -> tuple[float, float]:
    """Requests and response bytes per idle poll (people rule, interval 1s, nothing new)."""
    async with running(version, ALICE, push=push, interval="1s") as (immich, sidecar, _):
        await sidecar.wait_for_polls(2)
        immich.reset_requests()
        before = await sidecar.successful_polls()
        await sidecar.wait_for_polls(5)
        polls = await sidecar.successful_polls() - before
        requests = immich.api_requests()
        return len(requests) / polls, sum(r.response_bytes for r in requests) / polls


async def window_cost(version: tuple[int, int, int]) -> tuple[int, int, int]:
    """Fast polls, requests and response bytes of one fast-poll window at the defaults (every
    5 s for 3 min), two watched people, nobody recognised: in-process, the clock stepped (as in
    tests/test_fast_poll.py), so the figures are exact counts."""
    from datetime import timedelta

    from sidecar.config.model import PeopleFilter, Rule, Secret
    from sidecar.engine.rules.matching import compile_rules
    from sidecar.engine.store.database import Store
    from sidecar.engine.uploads.fast_poll import FastPoller
    from sidecar.engine.uploads.poller import Poller, Watch
    from sidecar.immich.client import ImmichClient
    from sidecar.immich.models import Person
    from sidecar.ops.metrics import Metrics

    now = [datetime.now(UTC)]
    rules = (Rule("kids", ("log",), PeopleFilter(any=("Alice", "Bob"))),)
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeImmich(version=version) as immich:
            people = {name: immich.add_person(name) for name in ("Alice", "Bob")}
            compiled = compile_rules(rules, lambda n: [Person(people[n], n)])
            watch = Watch(compiled, lambda _: ("log",), timedelta(hours=48), timedelta(minutes=2))
            store = Store.open(Path(tmp) / "state.db")
            immich.add_asset(created_at=now[0], unrecognised_faces=1)
            async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
                poller = Poller(client, store, Metrics(), lambda: now[0])

                async def poll(since: datetime, people: bool) -> bool:
                    await poller.fast_poll(watch, since, people=people)
                    return True

                fast = FastPoller(poll, lambda: (5.0, 180.0, 120.0), Metrics(), lambda: now[0])
                immich.reset_requests()
                fast.uploads_seen(now[0])
                polls = 0
                while fast.active():
                    now[0] += timedelta(seconds=5)
                    if fast.active():
                        await fast.poll_once()
                        polls += 1
            store.close()
            searches = immich.api_requests("POST", "/api/search/metadata")
            return polls, len(searches), sum(r.response_bytes for r in searches)


def said(figures: list[Figure]) -> None:
    """Each figure as soon as it is measured (a later failure keeps the earlier ones)."""
    print(table(figures[-1:]).splitlines()[-1], file=sys.stderr, flush=True)


async def run(section: str = "push") -> list[Figure]:
    label = "after (push + fast polls)" if HAS_PUSH else "before (main)"
    figures: list[Figure] = []
    cases = (
        ("3.1.0 push, rule without people", V31, EVERYTHING, True, False, 2.0),
        ("3.1.0 push, people rule, face +20 s", V31, ALICE, True, True, 25.0),
        ("2.7.5 no push, people rule, face +20 s", V2, ALICE, False, True, 30.0),
        ("3.1.0 no push, rule without people", V31, EVERYTHING, False, False, 15.0),
    )
    for what, version, rules, push, face, goal in cases:
        if not HAS_PUSH:
            what = what.replace(" push,", " (no push before),")
        samples, fast = await latencies(version, rules, push=push, face=face)
        figures.append(
            Figure(
                section,
                f"{label}: {what}: upload -> line",
                p50_p95(samples) + (f"; {fast:.0f} fast polls" if HAS_PUSH else ""),
                f"p50 <= {goal:g} s",
                statistics.median(samples) <= goal,
            )
        )
        said(figures)
    if HAS_PUSH:
        for version in (V2, V31):
            polls, searches, window_bytes = await window_cost(version)
            figures.append(
                Figure(
                    section,
                    f"one fast-poll window (5s x 3m), 2 watched people, "
                    f"immich {'.'.join(map(str, version))}",
                    f"{polls} fast polls, {searches} searches, {window_bytes:,} bytes",
                )
            )
            said(figures)
    for version, push in ((V2, False), (V31, False), (V31, True)):
        requests, size = await idle_cost(version, push)
        figures.append(
            Figure(
                section,
                f"{label}: idle poll, people rule, immich {'.'.join(map(str, version))}"
                + (" with push" if push and HAS_PUSH else ""),
                f"{requests:.1f} requests, {size:.0f} bytes",
            )
        )
        said(figures)
    for version, push in ((V2, False), (V31, False), (V31, True)):
        hour, hour_bytes, detail = await idle_hour(version, push)
        figures.append(
            Figure(
                section,
                f"{label}: idle hour per account at the defaults, people rule + rule without "
                f"people, immich {'.'.join(map(str, version))}"
                + (" with push" if push and HAS_PUSH else ""),
                f"{hour:.0f} requests, {hour_bytes / 1024:.1f} KiB ({detail})",
            )
        )
        said(figures)
    return figures
