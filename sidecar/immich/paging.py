"""Paging through a flat ``search/metadata`` without skipping or repeating an asset.

Immich orders a flat search by ``fileCreatedAt``, newest first, and pages it by offset. 2.x
breaks no ties (3.1 sorts them by id): assets taken at the same moment, as after an import, come
back in whatever order Postgres' plan gives, which may differ from one request to the next, so
the next offset can repeat some and skip others. A rule without people decides each asset once:
a skipped asset would be lost for good.

So after a full page this pager never asks for the next offset. It asks again for what was taken
at or before the oldest moment on the page (``takenBefore`` includes its bound) and drops the
assets it already handed on: one request per page, as offsets cost. When a whole page was taken
at one moment (more ties than a page holds), it splits that moment by upload time
(``createdAt``) until each part fits in a page.

``fileCreatedAt`` comes from JavaScript dates (whole milliseconds), so a moment read from an
answer is exact. ``createdAt`` is Postgres' ``now()`` (microseconds, shown cut to milliseconds),
so upload-time parts share their bounds and repeats are dropped by id.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sidecar.immich.models import Asset, SearchPage

log = logging.getLogger(__name__)

MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Bounds:
    """The time bounds of one request; each includes its bound, None is open."""

    created_after: datetime | None = None
    created_before: datetime | None = None
    taken_after: datetime | None = None
    taken_before: datetime | None = None


# One request: these bounds, and an offset page number only as the very last resort.
Fetch = Callable[[Bounds, int | None], Awaitable[SearchPage]]


class _OutOfRequests(Exception):
    pass


async def lossless_pages(
    fetch: Fetch,
    window: Bounds,
    *,
    max_requests: int,
) -> AsyncIterator[tuple[Asset, ...]]:
    """Every asset inside ``window`` once, a page at a time (a page may come out smaller)."""
    calls = 0

    async def counted(bounds: Bounds, page: int | None) -> SearchPage:
        nonlocal calls
        calls += 1
        if calls > max_requests:
            raise _OutOfRequests
        return await fetch(bounds, page)

    try:
        async for fresh in _by_moment(counted, window):
            yield fresh
    except _OutOfRequests:
        log.warning("Immich search stopped after %d requests; the rest is skipped", max_requests)


async def _by_moment(fetch: Fetch, window: Bounds) -> AsyncIterator[tuple[Asset, ...]]:
    taken_before = window.taken_before
    handed: set[str] = set()  # assets handed on that the next request can return again
    while True:
        page = await fetch(replace(window, taken_before=taken_before), None)
        fresh = _fresh(page.assets, handed)
        if fresh:
            yield fresh
        if page.next_page is None or not page.assets:
            return
        moments = [a.taken_at for a in page.assets]
        if any(m is None for m in moments):  # no moment to go on from: offsets it is
            async for fresh in _by_offset(
                fetch, replace(window, taken_before=taken_before), handed
            ):
                yield fresh
            return
        known = [m for m in moments if m is not None]
        oldest, newest = min(known), max(known)
        if oldest == newest:  # more assets taken at this moment than a page holds
            moment = replace(window, taken_after=oldest, taken_before=oldest)
            async for fresh in _by_upload(fetch, moment, handed):
                yield fresh
            taken_before, handed = oldest - MILLISECOND, set()
        else:
            taken_before = oldest
            handed = {a.id for a in page.assets if a.taken_at == oldest}


async def _by_upload(
    fetch: Fetch,
    moment: Bounds,
    seen: set[str],
) -> AsyncIterator[tuple[Asset, ...]]:
    """The assets of one moment, split by upload time until each part fits in a page."""
    parts: list[tuple[Bounds, bool]] = [(moment, True)]
    while parts:
        bounds, splittable = parts.pop()
        page = await fetch(bounds, None)
        fresh = _fresh(page.assets, seen)
        if fresh:
            yield fresh
        if page.next_page is None or not page.assets:
            continue
        if splittable:
            parts.extend(_split(bounds, [a.created_at for a in page.assets]))
            continue
        # Over a page uploaded within three milliseconds and taken at the same moment: no
        # bound can tell them apart. Never seen for real; offsets may skip some before 3.1.
        log.warning(
            "more than %d assets were uploaded within 3 ms and taken at the same "
            "moment; Immich before 3.1 may return some of them twice and others never",
            len(page.assets),
        )
        async for fresh in _by_offset(fetch, bounds, seen):
            yield fresh


def _split(bounds: Bounds, uploaded: Iterable[datetime]) -> list[tuple[Bounds, bool]]:
    """Parts of ``bounds`` by upload time, each leaving out some assets of the full page just
    seen (so splitting ends); together they cover ``bounds``. The flag: may be split again."""
    times = sorted(uploaded)
    first, last = times[0], times[-1]
    low, high = bounds.created_after, bounds.created_before
    if last - first >= 2 * MILLISECOND:
        middle = min(max(times[len(times) // 2], first + MILLISECOND), last - MILLISECOND)
        return [
            (replace(bounds, created_before=middle), True),
            (replace(bounds, created_after=middle), True),
        ]
    # The whole page was uploaded within two milliseconds: fence that in on its own.
    start, end = first - MILLISECOND, last + MILLISECOND
    parts = [
        (
            replace(
                bounds,
                created_after=start if low is None else max(low, start),
                created_before=end if high is None else min(high, end),
            ),
            False,
        )
    ]
    if low is None or low <= start:
        parts.append((replace(bounds, created_before=start), True))
    if high is None or high >= end:
        parts.append((replace(bounds, created_after=end), True))
    return parts


async def _by_offset(
    fetch: Fetch,
    bounds: Bounds,
    seen: set[str],
) -> AsyncIterator[tuple[Asset, ...]]:
    """The last resort: Immich's own offset pages after the first."""
    number = 2
    while True:
        page = await fetch(bounds, number)
        fresh = _fresh(page.assets, seen)
        if fresh:
            yield fresh
        if page.next_page is None or not page.assets:
            return
        number += 1


def _fresh(assets: Iterable[Asset], seen: set[str]) -> tuple[Asset, ...]:
    """The assets not handed on yet (now marked as handed on)."""
    fresh = []
    for asset in assets:
        if asset.id not in seen:
            seen.add(asset.id)
            fresh.append(asset)
    return tuple(fresh)
