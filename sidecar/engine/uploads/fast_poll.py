"""Fast polls: seconds, not an interval, from an upload to its post, with or without push.

Without push (Immich 2.x, or 3.x without the workflow), each watched account is asked every
``poll.fast.every`` whether anything is new: one small count of the assets created since the
last look (and, while assets wait for their metadata, of those changed since: metadata
extraction changes them). Nothing else runs until something is new; with push, an account's
pushes say so and it is not asked at all.

Something new opens a window of fast polls, ``poll.fast.for`` long: every ``every`` the people
rules are asked for the assets created since the window's first upload (less a margin for clock
skew), never the whole look-back window, so a late face is found within ``every`` of its
recognition; and the rules without people (and without ``none:``) decide what is new since
their cursor. Faces are recognised seconds to minutes after an upload, and assigning one does
not change the asset, so only another look notices it.

A window is never extended: uploads seen while it is open ride along, and after it a new window
opens only once a regular interval has passed (uploads seen meanwhile open it then). So a steady
stream of uploads cannot keep the people rules in fast mode: at most ``for / every`` fast polls
per ``for + interval``. While a window rests, a check that finds something new runs one fast
poll of the rules without people only: their searches follow the uploads, not the clock.

A fast poll never moves the regular poll's cursors or time: the regular poll still decides
everything else, and is the safety net for whatever a check misses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)

# Immich's clock and ours may differ; a fast poll reaches this much further back (cheap: Immich
# answers only the watched people's assets).
SKEW_MARGIN = timedelta(minutes=10)
# Each check overlaps the last look by this much: an insert becomes visible a moment after the
# time Immich gave it. Something seen twice costs nothing (a window open or resting ignores it).
CHECK_OVERLAP = timedelta(seconds=5)

FastPoll = Callable[[datetime, bool], Awaitable[bool]]  # (since, people too?) -> it worked
Check = Callable[[datetime], Awaitable[bool | None]]  # anything new since? None: not asked


@dataclass(frozen=True)
class WindowState:
    """Where the fast polls stand. ``ends`` None: no window open; ``pending``: uploads seen
    while resting, created at or after it (the window that opens when the rest ends)."""

    since: datetime | None = None  # the oldest upload the open window looks for
    ends: datetime | None = None
    rest_until: datetime | None = None  # no new window before this
    pending: datetime | None = None


def opened(
    state: WindowState, now: datetime, since: datetime, length: float, rest: float
) -> WindowState | None:
    """The state after new uploads (created at or after ``since``) were seen at ``now``; None
    when nothing changes (a window is open, or uploads are pending already)."""
    if length <= 0:
        return None
    state = closed(state, now, rest, length)
    if state.ends is not None:
        earlier = min(since, state.since) if state.since is not None else since
        return replace(state, since=earlier) if earlier != state.since else None
    if state.rest_until is not None and now < state.rest_until:
        pending = since if state.pending is None else min(since, state.pending)
        return replace(state, pending=pending) if pending != state.pending else None
    return WindowState(since=since, ends=now + timedelta(seconds=length))


def closed(state: WindowState, now: datetime, rest: float, length: float = 0.0) -> WindowState:
    """The state at ``now``: a window whose end has passed is closed, and the rest begins; a
    rest that has passed with uploads pending opens their window."""
    if state.ends is not None and now >= state.ends:
        state = WindowState(rest_until=state.ends + timedelta(seconds=rest))
    if state.rest_until is not None and now >= state.rest_until and state.pending is not None:
        if length > 0:
            return WindowState(since=state.pending, ends=now + timedelta(seconds=length))
        return WindowState(rest_until=state.rest_until)
    return state


class FastPoller:
    """One account's checks and fast polls. ``poll(since, people)`` is one fast poll (the
    caller takes the poll lock and builds the watch; ``people`` False: only the rules without
    people); ``check(since)`` asks whether anything is new (None: not asked now, or it failed);
    ``settings()`` gives (every, for, interval) in seconds, read again for each decision so a
    reload applies."""

    def __init__(
        self,
        poll: FastPoll,
        settings: Callable[[], tuple[float, float, float]],
        metrics: Metrics,
        clock: Callable[[], datetime],
        check: Check | None = None,
    ) -> None:
        self._poll = poll
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._check = check
        self.state = WindowState()
        self._wake = asyncio.Event()
        self.checked = clock()  # everything older was seen by a look (a check or a poll)

    def uploads_seen(self, since: datetime) -> bool:
        """New uploads created at or after ``since`` were seen; opens a window if one may open
        (else they wait for the end of the rest). Returns True when a window opened."""
        _, length, rest = self._settings()
        now = self._clock()
        new = opened(self.state, now, since - SKEW_MARGIN, length, rest)
        if new is None:
            return False
        was_open = self.state.ends is not None and now < self.state.ends
        self.state = new
        if was_open or new.ends is None:
            return False
        self._window_opened()
        return True

    def _window_opened(self) -> None:
        self._metrics.fast_poll_windows.inc()
        log.debug("fast polls until %s", self.state.ends)
        self._wake.set()

    def active(self) -> bool:
        _, length, rest = self._settings()
        before = self.state
        self.state = closed(before, self._clock(), rest, length)
        if before.ends is None and self.state.ends is not None:  # the pending window opened
            self._window_opened()
        return self.state.ends is not None

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if self.active():
                await self._window(stop)
                continue
            every, _, _ = self._settings()
            woken = await _first(self._wake.wait(), stop.wait(), within=every)
            self._wake.clear()
            if stop.is_set() or woken:
                continue
            if await self.check_once() and self.active():
                await self.poll_once()  # what the check saw, now: then every `every`

    async def _window(self, stop: asyncio.Event) -> None:
        while not stop.is_set() and self.active():
            every, _, _ = self._settings()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            if stop.is_set() or not self.active():
                return
            await self.poll_once()

    async def check_once(self) -> bool:
        """One check; True when something is new (a window opened, or it waits for the rest's
        end and the rules without people were polled at once)."""
        if self._check is None:
            return False
        started = self._clock()
        since = self.checked - CHECK_OVERLAP
        try:
            new = await self._check(since)
        except Exception:
            log.exception("new-upload check failed unexpectedly")
            new = None
        if new is None:
            return False
        self.checked = started
        self._metrics.upload_checks.labels(result="new" if new else "nothing").inc()
        if not new:
            return False
        if self.uploads_seen(since) or self.active():
            return True
        await self._run_poll(since, people=False)  # resting: only what needs no faces
        return True

    async def poll_once(self) -> None:
        since = self.state.since
        if since is not None:
            await self._run_poll(since, people=True)

    async def _run_poll(self, since: datetime, *, people: bool) -> None:
        started = self._clock()
        try:
            ok = await self._poll(since, people)
        except Exception:
            log.exception("fast poll failed unexpectedly")
            ok = False
        if ok:
            self.checked = max(self.checked, started)
        self._metrics.fast_polls.labels(result="success" if ok else "failure").inc()


async def _first(*waits: Awaitable[object], within: float | None = None) -> bool:
    """Wait for the first of ``waits``; False when ``within`` seconds passed first."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return bool(done)
