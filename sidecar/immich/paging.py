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
(``createdAt``) until each part fits in a page, and an upload moment by change time
(``updatedAt``).

That last step is the normal case for an external library: a scan inserts a batch of files in
one statement, so the whole batch shares one ``createdAt`` (and, when the files carry the same
date, one ``fileCreatedAt``); metadata extraction then updates each asset on its own, which
gives each its own ``updatedAt``. (The timeline bucket endpoints list a whole month without
paging, but they inner-join the exif table as the search does and carry no file name or people,
so every asset would still need a request of its own.) Only over a page of assets that share
all three moments to the millisecond (a bulk edit of more than a page at once) does the pager
fall back to offsets, which are stable from 3.1 on.

``fileCreatedAt`` comes from JavaScript dates (whole milliseconds), so a moment read from an
answer is exact. ``createdAt`` and ``updatedAt`` are Postgres' ``now()`` (microseconds, shown
cut to milliseconds), so their parts share their bounds and repeats are dropped by id.
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
    updated_after: datetime | None = None
    updated_before: datetime | None = None


# Bounds, how they may be split next ("created", "updated", None: offsets), and a full page
# of assets inside them when one is at hand (None: ask).
Part = tuple[Bounds, str | None, tuple[Asset, ...] | None]

# One request: these bounds, and an offset page number only as the very last resort.
Fetch = Callable[[Bounds, int | None], Awaitable[SearchPage]]


class _OutOfRequests(Exception):
    pass


async def lossless_pages(
    fetch: Fetch,
    window: Bounds,
    *,
    max_requests: int,
    stable_ties: bool = False,
) -> AsyncIterator[tuple[Asset, ...]]:
    """Every asset inside ``window`` once, a page at a time (a page may come out smaller).
    ``stable_ties``: the server orders ties by id (3.1+), so its offsets are safe."""
    calls = 0

    async def counted(bounds: Bounds, page: int | None) -> SearchPage:
        nonlocal calls
        calls += 1
        if calls > max_requests:
            raise _OutOfRequests
        return await fetch(bounds, page)

    try:
        async for fresh in _by_moment(counted, window, stable_ties):
            yield fresh
    except _OutOfRequests:
        log.warning("Immich search stopped after %d requests; the rest is skipped", max_requests)


async def _by_moment(
    fetch: Fetch, window: Bounds, stable_ties: bool
) -> AsyncIterator[tuple[Asset, ...]]:
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
            async for fresh in _by_parts(fetch, moment, handed, stable_ties, page.assets):
                yield fresh
            taken_before, handed = oldest - MILLISECOND, set()
        else:
            taken_before = oldest
            handed = {a.id for a in page.assets if a.taken_at == oldest}


async def _by_parts(
    fetch: Fetch,
    moment: Bounds,
    seen: set[str],
    stable_ties: bool,
    sample: tuple[Asset, ...],
) -> AsyncIterator[tuple[Asset, ...]]:
    """The assets of one moment, split by upload time, then by change time, until each part
    fits in a page. ``sample``: a full page of the moment's assets, already handed on; a part
    whose sample is known is split without asking for it again."""
    parts: list[Part] = [(moment, "created", sample)]
    while parts:
        bounds, key, known = parts.pop()
        asked = known is None
        if known is None:
            page = await fetch(bounds, None)
            fresh = _fresh(page.assets, seen)
            if fresh:
                yield fresh
            if page.next_page is None or not page.assets:
                continue
            known = page.assets
        if key is not None:
            times = [getattr(a, f"{key}_at") for a in known]
            if all(t is not None for t in times):
                parts.extend(_split(bounds, key, times, known))
                continue
        if not stable_ties:
            # A page of assets that share their taken, upload and change moments to the
            # millisecond (a bulk edit): no bound can tell them apart.
            log.warning(
                "more than %d assets share the moment they were taken, uploaded and last "
                "changed; Immich before 3.1 may page them with some twice and others never",
                len(known),
            )
        if not asked:  # offsets go on from the first page of these very bounds
            first = await fetch(bounds, None)
            fresh = _fresh(first.assets, seen)
            if fresh:
                yield fresh
            if first.next_page is None or not first.assets:
                continue
        async for fresh in _by_offset(fetch, bounds, seen):
            yield fresh


def _split(
    bounds: Bounds, field: str, times: Iterable[datetime], sample: tuple[Asset, ...]
) -> list[Part]:
    """Parts of ``bounds`` by ``field`` (``created`` or ``updated``), each leaving out some
    assets of ``sample`` (a full page inside ``bounds``, so splitting ends); together they
    cover ``bounds``. The key of each part says how it may be split next (the same field, then
    ``updated``, then None: offsets); a fence around the whole sample keeps the sample."""
    ordered = sorted(times)
    first, last = ordered[0], ordered[-1]
    after, before = f"{field}_after", f"{field}_before"
    low, high = getattr(bounds, after), getattr(bounds, before)
    if last - first >= 2 * MILLISECOND:
        middle = min(max(ordered[len(ordered) // 2], first + MILLISECOND), last - MILLISECOND)
        return [
            (replace(bounds, **{before: middle}), field, None),
            (replace(bounds, **{after: middle}), field, None),
        ]
    # The whole sample within two milliseconds: fence it in, split it by what follows.
    start, end = first - MILLISECOND, last + MILLISECOND
    fence = {
        after: start if low is None else max(low, start),
        before: end if high is None else min(high, end),
    }
    then = "updated" if field == "created" else None
    parts: list[Part] = [(replace(bounds, **fence), then, sample)]
    if low is None or low <= start:
        parts.append((replace(bounds, **{before: start}), field, None))
    if high is None or high >= end:
        parts.append((replace(bounds, **{after: end}), field, None))
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
