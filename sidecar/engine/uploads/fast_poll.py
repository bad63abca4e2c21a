"""Fast polls: after new uploads are seen, ask for the people rules' assets every few seconds
for a while, then fall back to the regular interval.

Faces are recognised seconds to minutes after an upload, and assigning one does not change the
asset, so only another look notices it. A window opens when a poll (or a push) sees new uploads
and lasts ``poll.fast.for`` from then: uploads seen while it is open do not extend it, and after
it a new window can open only once a regular interval has passed. A steady stream of uploads
therefore cannot keep the sidecar in fast mode: at most ``for / every`` fast polls per
``for + interval``.

A fast poll asks only for the watched people's assets created since the window's first upload
(less a margin for clock skew), never the whole look-back window, and never moves the stream
cursor: the regular poll still decides everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sidecar.engine.rules.matching import Match
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import AssetSearch, Watch, Window, collect_matches
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)

# Immich's clock and ours may differ; a fast poll reaches this much further back (cheap: Immich
# answers only the watched people's assets).
SKEW_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True)
class WindowState:
    """Where the fast polls stand. ``ends`` None: no window open."""

    since: datetime | None = None  # the oldest upload the open window looks for
    ends: datetime | None = None
    rest_until: datetime | None = None  # no new window before this


def opened(
    state: WindowState, now: datetime, since: datetime, length: float, rest: float
) -> WindowState | None:
    """The state after new uploads (created at or after ``since``) were seen at ``now``; None
    when nothing changes (a window is open, or the last one ended less than ``rest`` ago)."""
    if length <= 0:
        return None
    state = closed(state, now, rest)
    if state.ends is not None:
        earlier = min(since, state.since) if state.since is not None else since
        return replace(state, since=earlier) if earlier != state.since else None
    if state.rest_until is not None and now < state.rest_until:
        return None
    return WindowState(since=since, ends=now + timedelta(seconds=length))


def closed(state: WindowState, now: datetime, rest: float) -> WindowState:
    """The state at ``now``: a window whose end has passed is closed, and the rest begins."""
    if state.ends is not None and now >= state.ends:
        return WindowState(rest_until=state.ends + timedelta(seconds=rest))
    return state


async def poll_people(
    client: AssetSearch, store: Store, watch: Watch, since: datetime, now: datetime
) -> int:
    """One fast poll: the people rules over the assets created since ``since``; returns how
    many new deliveries it queued. The stream cursor and the last poll time stay as they are."""
    people = watch.person_rules
    if not people:
        return 0
    baselines = store.rule_baselines((r.name for r in people), since_if_new=now)
    window = Window(
        people_since=max(since, now - watch.lookback),
        stream_after=now,
        stream_before=now,
        settled_before=now - watch.settle,
    )
    queued = 0

    def enqueue(found: list[Match]) -> None:
        nonlocal queued
        rows = [(m.rule.name, t, m.asset) for m in found for t in watch.targets_of(m.rule.name)]
        queued += store.enqueue(rows, now)

    await collect_matches(client, replace(watch, rules=people), window, baselines, enqueue)
    return queued


class FastPoller:
    """Runs the fast polls of open windows. ``poll(since)`` is one fast poll (the caller takes
    the poll lock and builds the watch); ``settings()`` gives (every, for, interval) in seconds,
    read again for each decision so a reload applies."""

    def __init__(
        self,
        poll: Callable[[datetime], Awaitable[bool]],
        settings: Callable[[], tuple[float, float, float]],
        metrics: Metrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._poll = poll
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self.state = WindowState()
        self._wake = asyncio.Event()

    def uploads_seen(self, since: datetime) -> bool:
        """New uploads created at or after ``since`` were seen; opens a window if one may open.
        Returns True when a window opened."""
        _, length, rest = self._settings()
        now = self._clock()
        new = opened(self.state, now, since - SKEW_MARGIN, length, rest)
        if new is None:
            return False
        was_open = self.state.ends is not None and now < self.state.ends
        self.state = new
        if was_open:
            return False
        self._metrics.fast_poll_windows.inc()
        log.debug("fast polls until %s", new.ends)
        self._wake.set()
        return True

    def active(self) -> bool:
        _, _, rest = self._settings()
        self.state = closed(self.state, self._clock(), rest)
        return self.state.ends is not None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await _first(self._wake.wait(), stop.wait())
            self._wake.clear()
            while not stop.is_set() and self.active():
                every, _, _ = self._settings()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), every)
                if stop.is_set() or not self.active():
                    break
                await self.poll_once()

    async def poll_once(self) -> None:
        since = self.state.since
        if since is None:
            return
        try:
            ok = await self._poll(since)
        except Exception:
            log.exception("fast poll failed unexpectedly")
            ok = False
        self._metrics.fast_polls.labels(result="success" if ok else "failure").inc()


async def _first(*waits: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
