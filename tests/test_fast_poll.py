"""Fast polls: a window opens on new uploads, ends by itself, and what it costs (counted)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sidecar.engine.store.database import Store
from sidecar.engine.uploads.fast_poll import FastPoller, WindowState, closed, opened, poll_people
from sidecar.ops.metrics import Metrics
from tests.fakes.fake_immich import FakeImmich
from tests.test_poller import V2, V32, Clock, Rig

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def test_a_window_opens_once_is_not_extended_and_rests_an_interval() -> None:
    state = opened(WindowState(), T0, T0, length=180, rest=120)
    assert state is not None and state.ends == T0 + timedelta(minutes=3)
    # More uploads while it is open do not push its end out (a steady stream cannot keep it).
    later = opened(state, T0 + timedelta(minutes=2), T0 + timedelta(minutes=2), 180, 120)
    assert later is None
    # It ends by itself, then no window for one regular interval.
    ended = closed(state, T0 + timedelta(minutes=3), rest=120)
    assert ended.ends is None and ended.rest_until == T0 + timedelta(minutes=5)
    assert opened(ended, T0 + timedelta(minutes=4), T0, 180, 120) is None
    again = opened(ended, T0 + timedelta(minutes=5), T0 + timedelta(minutes=5), 180, 120)
    assert again is not None and again.ends == T0 + timedelta(minutes=8)


def test_for_zero_turns_fast_polls_off() -> None:
    assert opened(WindowState(), T0, T0, length=0, rest=120) is None


def test_a_steady_stream_keeps_fast_polls_to_a_bounded_share() -> None:
    """Uploads every 10 s for an hour: fast polls only while windows are open (3 of every 5
    minutes), never continuously."""
    clock = Clock()
    polls: list[datetime] = []

    async def poll(since: datetime) -> bool:
        polls.append(clock.now)
        return True

    fast = FastPoller(poll, lambda: (5.0, 180.0, 120.0), Metrics(), clock)
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

        async def poll(since: datetime) -> bool:
            await poll_people(rig.client, store, watch, since, clock.now)
            return True

        metrics = Metrics()
        fast = FastPoller(poll, lambda: (5.0, 180.0, 120.0), metrics, clock)
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

    async def poll(since: datetime) -> bool:
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
