"""Fast polls and new-upload checks: a window opens on new uploads, ends by itself, and what it
costs (counted); without push each account is checked every ``every`` with one small count."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sidecar.config.model import Rule
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.fast_poll import (
    CHECK_OVERLAP,
    FastPoller,
    WindowState,
    closed,
    opened,
)
from sidecar.ops.metrics import Metrics
from tests.fakes.fake_immich import FakeImmich
from tests.test_poller import V2, V32, Clock, Rig

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DEFAULTS = (5.0, 180.0, 120.0)  # every, for, interval


def test_a_window_opens_once_is_not_extended_and_rests_an_interval() -> None:
    state = opened(WindowState(), T0, T0, length=180, rest=120)
    assert state is not None and state.ends == T0 + timedelta(minutes=3)
    # More uploads while it is open do not push its end out (a steady stream cannot keep it).
    later = opened(state, T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), 180, 120)
    assert later is None
    # It ends by itself, then no window for one regular interval.
    ended = closed(state, T0 + timedelta(minutes=3), rest=120)
    assert ended.ends is None and ended.rest_until == T0 + timedelta(minutes=5)
    again = opened(ended, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5), 180, 120)
    assert again is not None and again.ends == T0 + timedelta(minutes=8)


def test_uploads_seen_while_resting_open_their_window_when_the_rest_ends() -> None:
    state = closed(opened(WindowState(), T0, T0, 180, 120), T0 + timedelta(minutes=3), 120)  # type: ignore[arg-type]
    seen = T0 + timedelta(minutes=4)
    waiting = opened(state, seen, seen, 180, 120)
    assert waiting is not None and waiting.ends is None and waiting.pending == seen
    assert opened(waiting, seen, seen, 180, 120) is None  # nothing changes
    still = closed(waiting, T0 + timedelta(minutes=4, seconds=59), 120, 180)
    assert still.ends is None  # not before the rest's end
    end = T0 + timedelta(minutes=5)
    window = closed(waiting, end, 120, 180)
    assert window.since == seen and window.ends == end + timedelta(minutes=3)


def test_for_zero_turns_fast_polls_off() -> None:
    assert opened(WindowState(), T0, T0, length=0, rest=120) is None


def test_a_steady_stream_keeps_fast_polls_to_a_bounded_share() -> None:
    """Uploads every 10 s for an hour: fast polls of the people rules only while windows are
    open (3 of every 5 minutes), never continuously."""
    clock = Clock()
    polls: list[datetime] = []

    async def poll(since: datetime, people: bool) -> bool:
        polls.append(clock.now)
        return True

    fast = FastPoller(poll, lambda: DEFAULTS, Metrics(), clock)
    start = clock.now

    async def hour() -> None:
        for _ in range(720):  # 5-second steps
            if int((clock.now - start).total_seconds()) % 10 == 0:
                fast.uploads_seen(clock.now)
            clock.advance(seconds=5)
            if fast.active():
                await fast.poll_once()

    asyncio.run(hour())
    # 12 windows of 5 minutes (3 fast, 2 resting) at most 36 polls each.
    assert len(polls) <= 12 * 36
    assert len(polls) < 720


@pytest.mark.parametrize(("version", "per_poll"), [(V2, 2), (V32, 1)], ids=["2.7", "3.2"])
async def test_one_window_costs_35_fast_polls_and_ends_by_itself(
    tmp_path, version: tuple[int, int, int], per_poll: int
) -> None:
    """The cost of one window at the defaults (every 5 s for 3 min): 35 fast polls, each one
    search per watched person on 2.x (Alice, Bob) and one on 3.2+. Counted, not timed."""
    async with FakeImmich(version=version) as immich:
        clock = Clock()
        store = Store.open(tmp_path / "state.db")
        rig = Rig(immich, store, clock)
        watch = rig.watch()
        store.rule_baselines(
            (r.name for r in watch.rules), since_if_new=clock.now - timedelta(hours=1)
        )
        asset = rig.photo(ago=timedelta(seconds=1), unrecognised_faces=1)

        async def poll(since: datetime, people: bool) -> bool:
            await rig.poller.fast_poll(watch, since, people=people)
            return True

        metrics = Metrics()
        fast = FastPoller(poll, lambda: DEFAULTS, metrics, clock)
        immich.reset_requests()
        assert fast.uploads_seen(clock.now - timedelta(seconds=1))
        polls = 0
        while fast.active():
            clock.advance(seconds=5)
            if fast.active():
                await fast.poll_once()
                polls += 1
            if polls == 4:
                immich.recognise(asset, rig.alice)  # the face arrives 20 s after the upload
        assert polls == 35
        assert len(rig.searches()) == 35 * per_poll
        assert {r.asset_id for r in store.rows()} == {asset}
        assert metrics.fast_polls.labels(result="success")._value.get() == 35
        assert not fast.active()  # ended by itself: no poll now, whatever happens next
        await rig.client.aclose()
        store.close()


async def test_the_running_loop_stops_polling_when_the_window_ends() -> None:
    """Real time, scaled down: every 0.05 s for 0.3 s; afterwards it polls no more."""
    polls: list[float] = []
    loop = asyncio.get_running_loop()

    async def poll(since: datetime, people: bool) -> bool:
        polls.append(loop.time())
        return True

    fast = FastPoller(poll, lambda: (0.05, 0.3, 60.0), Metrics(), lambda: datetime.now(UTC))
    stop = asyncio.Event()
    task = asyncio.create_task(fast.run(stop))
    fast.uploads_seen(datetime.now(UTC))
    for _ in range(200):  # bounded: at most 2 s
        await asyncio.sleep(0.01)
        if not fast.active():
            break
    assert not fast.active()
    counted = len(polls)
    await asyncio.sleep(0.2)
    assert len(polls) == counted and 1 <= counted <= 6
    assert not fast.uploads_seen(datetime.now(UTC))  # resting: no new window yet
    stop.set()
    await asyncio.wait_for(task, 2)


# -- the new-upload check -------------------------------------------------------------------


EVERYTHING = Rule("everything", ("family",))


class Checked:
    """A FastPoller over a Rig's poller, its clock stepped by hand."""

    def __init__(self, rig: Rig, rules: list[Rule]) -> None:
        self.rig = rig
        self.watch = rig.watch(rules)
        self.people_polls: list[bool] = []
        self.metrics = Metrics()
        self.fast = FastPoller(self._poll, lambda: DEFAULTS, self.metrics, rig.clock, self._check)

    async def _poll(self, since: datetime, people: bool) -> bool:
        self.people_polls.append(people)
        await self.rig.poller.fast_poll(self.watch, since, people=people)
        return True

    async def _check(self, since: datetime) -> bool | None:
        return await self.rig.poller.anything_new(since)

    def checks(self, result: str) -> float:
        return float(self.metrics.upload_checks.labels(result=result)._value.get())


@pytest.fixture(params=[V2, (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def checked(request, tmp_path):
    clock = Clock()
    store = Store.open(tmp_path / "state.db")
    async with FakeImmich(version=request.param) as immich:
        rig = Rig(immich, store, clock)
        await rig.client.version()
        rules = [*rig.rules, EVERYTHING]
        rig.poller.start_baseline([r.name for r in rules], backfill=timedelta(0))
        await rig.poller.poll(rig.watch(rules))  # the first regular poll, at start
        yield Checked(rig, rules)
        await rig.client.aclose()
    store.close()


async def test_an_idle_check_is_one_small_count_and_nothing_else(checked: Checked) -> None:
    immich, clock = checked.rig.immich, checked.rig.clock
    immich.reset_requests()
    for _ in range(12):  # a minute at the default 5 s
        clock.advance(seconds=5)
        assert not await checked.fast.check_once()
    assert [r.path for r in immich.requests] == ["/api/search/statistics"] * 12
    assert {tuple(sorted(r.json or {})) for r in immich.requests} == {
        ("createdAfter", "visibility")
    }
    assert sum(r.response_bytes for r in immich.requests) < 12 * 40
    assert checked.checks("nothing") == 12 and checked.people_polls == []


async def test_a_check_that_sees_an_upload_polls_at_once_and_opens_a_window(
    checked: Checked,
) -> None:
    rig, clock = checked.rig, checked.rig.clock
    clock.advance(seconds=5)
    photo = rig.immich.add_asset(created_at=clock.now - timedelta(seconds=1))
    assert await checked.fast.check_once()
    assert checked.fast.active()
    await checked.fast.poll_once()  # what run() does right after such a check
    assert ("everything", photo) in rig.queued()  # the rule without people: no settle wait
    assert checked.checks("new") == 1
    # The look overlaps the last by a few seconds, never more: a check asks from then on.
    [check] = [r for r in rig.immich.requests if r.path == "/api/search/statistics"][:1]
    assert (check.json or {})["createdAfter"] <= (clock.now - CHECK_OVERLAP).isoformat()


async def test_while_resting_a_new_upload_polls_only_the_rules_without_people(
    checked: Checked,
) -> None:
    rig, clock, fast = checked.rig, checked.rig.clock, checked.fast
    fast.uploads_seen(clock.now)
    clock.advance(minutes=3)
    assert not fast.active()  # resting for an interval
    photo = rig.immich.add_asset(created_at=clock.now, people=[rig.alice])
    clock.advance(seconds=5)
    rig.immich.reset_requests()
    assert await fast.check_once()
    assert checked.people_polls == [False]
    assert ("everything", photo) in rig.queued() and ("kids", photo) not in rig.queued()
    people_searches = [r for r in rig.searches() if "personIds" in (r.json or {})]
    assert people_searches == []
    clock.advance(minutes=2)  # the rest ends: the window for the upload's faces opens
    assert fast.active() and fast.state.since is not None
    await fast.poll_once()
    assert ("kids", photo) in rig.queued()


async def test_metadata_arriving_later_is_seen_by_a_check(checked: Checked) -> None:
    """An external library's photo: counted at the scan, unread until extraction; the check
    sees the extraction (the asset changed) while the rule without people waits for it."""
    rig, clock, fast = checked.rig, checked.rig.clock, checked.fast
    rig.immich.clock = clock
    clock.advance(seconds=5)
    [photo] = rig.immich.library_scan(1, created_at=clock.now, extract_after=timedelta(minutes=9))
    assert await fast.check_once()
    await fast.poll_once()
    assert ("everything", photo) not in rig.queued()  # no metadata yet
    for _ in range(2):  # the next looks: nothing created since, nothing changed yet
        clock.advance(seconds=20)
        await fast.check_once()
    rig.immich.reset_requests()
    clock.advance(minutes=10)  # past the window and its rest; the file was read meanwhile
    assert not fast.active()
    assert await fast.check_once()  # nothing created since, but it changed
    counts = [r.json for r in rig.immich.requests if r.path == "/api/search/statistics"]
    assert [sorted(body or {}) for body in counts] == [
        ["createdAfter", "visibility"],
        ["updatedAfter", "visibility"],
    ]
    assert fast.active()
    await fast.poll_once()
    assert ("everything", photo) in rig.queued()


# -- in the running sidecar -----------------------------------------------------------------


@pytest.mark.parametrize("push", [False, True], ids=["no-push", "push"])
async def test_the_sidecar_checks_without_push_and_never_with_it(tmp_path, monkeypatch, push):
    """Real time, scaled down (checks every second, a poll an hour): without push the account
    is checked with one small count each time; with push, not once."""
    import io

    from sidecar.app import Sidecar
    from tests.e2e_harness import free_port, write_config

    async with FakeImmich(version=(3, 1, 0)) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        immich.add_person("Alice")
        config = tmp_path / "config.yaml"
        extra = f"push:\n  listen: 127.0.0.1:{free_port()}\n  secret: s3cret-s3cret-s3cret\n"
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            rules="- {name: kids, people: {any: [Alice]}, targets: [stdout]}\n"
            "- {name: everything, targets: [stdout]}",
            interval="1h",
            metrics_port=free_port(),
            extra=extra if push else "",
        )
        config.write_text(config.read_text().replace("poll:\n", "poll:\n  fast: {every: 1s}\n", 1))
        sidecar = Sidecar(config, stdout=io.StringIO())
        await sidecar.start()
        try:
            await asyncio.sleep(0.3)  # the first poll, at start
            immich.reset_requests()
            await asyncio.sleep(3.5)
            checks = [r for r in immich.requests if r.path == "/api/search/statistics"]
            assert all(sorted(r.json or {}) == ["createdAfter", "visibility"] for r in checks)
            if push:
                assert immich.requests == []  # nothing at all between two polls
            else:
                assert 2 <= len(checks) <= 4 and len(immich.requests) == len(checks)
        finally:
            await sidecar.stop()
