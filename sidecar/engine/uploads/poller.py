"""One poll: ask Immich for the assets that could match, match them, queue the deliveries.

Two kinds of rules are polled differently, because faces are recognised late (minutes to hours
after upload) and assigning a face does not change an asset's ``updatedAt``:

* rules that need a person (``people.any`` / ``people.all``) ask Immich for the assets of the
  watched people created inside the look-back window, every poll. Immich filters by person, so a
  poll costs requests and bytes in proportion to the matching assets, not to the window or the
  library; the outbox's uniqueness makes re-seeing an asset harmless.
* rules that need no person (no people filter, or ``none:`` only) decide each asset once, when it
  is older than ``poll.settle``, from a cursor over newly created assets; assets whose metadata
  Immich has not read by then (an external library) are waited for (``engine.stream``).

Person rules need no such wait: Immich finds faces only after it read the file, so an asset
with a watched person always has its exif row and the ``withExif`` search sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sidecar.clock import utc_now
from sidecar.engine.albums.watcher import AlbumWatcher
from sidecar.engine.rules.matching import CompiledRule, Match, matches_for
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.stream import StreamClient, StreamPass, UnreadLedger
from sidecar.immich.models import Asset
from sidecar.ops.metrics import Metrics
from sidecar.wording import count

log = logging.getLogger(__name__)

BASELINE_KEY = "baseline"
STREAM_CURSOR_KEY = "stream_cursor"
LAST_POLL_KEY = "last_successful_poll_started"


class AssetSearch(StreamClient, Protocol):
    """The part of the Immich client a poll uses (it picks the form the server's version
    understands)."""

    def assets_of_people(
        self,
        person_ids: Iterable[str],
        since: datetime,
    ) -> AsyncIterator[tuple[Asset, ...]]: ...


@dataclass(frozen=True)
class Watch:
    """What a poll needs from the settings; replaced as a whole when the config reloads."""

    rules: tuple[CompiledRule, ...]
    targets_of: Callable[[str], Sequence[str]]  # rule name -> its target names
    lookback: timedelta
    settle: timedelta

    @property
    def person_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.requires_person and not r.watches_albums)

    @property
    def stream_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if not r.requires_person and not r.watches_albums)

    @property
    def album_rules(self) -> tuple[CompiledRule, ...]:
        """Rules that fire on additions to albums (sidecar/albums.py polls them)."""
        return tuple(r for r in self.rules if r.watches_albums)


@dataclass(frozen=True)
class Window:
    people_since: datetime  # person rules: assets created at or after this
    stream_after: datetime  # other rules: assets created in [stream_after, stream_before]
    stream_before: datetime
    settled_before: datetime  # person rules with `none:` wait until an asset is this old


@dataclass(frozen=True)
class Collected:
    examined: int  # assets looked at
    waiting: int  # new assets left for later: Immich has not read their files yet


@dataclass(frozen=True)
class PollResult:
    assets_seen: int
    matches: int
    queued: int  # new outbox rows


def single_type(rules: Iterable[CompiledRule]) -> str | None:
    """The one asset type all these rules want, to let Immich filter by it; else None."""
    wanted: set[str] = set()
    for rule in rules:
        wanted |= rule.rule.asset_types
    return next(iter(wanted)) if len(wanted) == 1 else None


def window_for(
    now: datetime,
    last_poll: datetime | None,
    stream_cursor: datetime,
    lookback: timedelta,
    settle: timedelta,
) -> Window:
    """The time ranges one poll looks at.

    The look-back runs from the start of the last successful poll, not from now, so an outage
    longer than the look-back loses nothing: the first poll after it reaches back far enough.
    """
    reference = min(last_poll, now) if last_poll is not None else now
    settled = now - settle
    return Window(
        people_since=reference - lookback,
        stream_after=stream_cursor,
        stream_before=max(settled, stream_cursor),
        settled_before=settled,
    )


def people_since(
    person_rules: Sequence[CompiledRule], window: Window, baselines: Mapping[str, datetime]
) -> datetime:
    """The person rules look at assets created from then on: the look-back window, or later
    when every one of them started after it."""
    since = window.people_since
    starts = [baselines[r.name] for r in person_rules if r.name in baselines]
    if starts and len(starts) == len(person_rules):
        since = max(since, min(starts))
    return since


def settled_for(rule: CompiledRule, asset: Asset, window: Window) -> bool:
    """Whether a person rule may queue its match now: an exclusion (``none:``) can only be
    trusted once faces had time to be recognised (``poll.settle``)."""
    return not rule.none or asset.created_at <= window.settled_before


async def collect_matches(
    client: AssetSearch,
    watch: Watch,
    window: Window,
    baselines: dict[str, datetime],
    on_page: Callable[[list[Match]], None],
    ledger: UnreadLedger | None = None,
    now: datetime | None = None,
) -> Collected:
    """Fetch the candidate assets page by page and hand each page's matches to ``on_page``.
    Memory stays bounded by one page. New assets that Immich has not read yet are remembered
    in ``ledger`` (None: a dry run, which only counts them)."""
    seen = 0
    person_rules = watch.person_rules
    if person_rules:
        since = people_since(person_rules, window, baselines)
        watched = frozenset().union(*(r.watched_person_ids for r in person_rules))
        async for page in client.assets_of_people(watched, since):
            seen += len(page)
            found = matches_for(person_rules, page, baselines)
            on_page([m for m in found if settled_for(m.rule, m.asset, window)])
    stream_rules = watch.stream_rules
    waiting = 0
    if stream_rules and window.stream_before > window.stream_after:
        stream = StreamPass(client, stream_rules, single_type(stream_rules), baselines, on_page)
        outcome = await stream.new_window(
            window.stream_after, window.stream_before, now or window.stream_before, ledger
        )
        seen += outcome.examined
        waiting = outcome.waiting
    return Collected(seen, waiting)


async def revisit_unread(
    client: StreamClient,
    watch: Watch,
    store: Store,
    baselines: dict[str, datetime],
    on_page: Callable[[list[Match]], None],
    now: datetime,
) -> int:
    """Look again at the windows whose assets Immich had not all read; returns how many assets
    were decided. Without rules that need no person, nothing waits for them."""
    windows = store.unread_windows()
    if not windows:
        return 0
    rules = watch.stream_rules
    stream = StreamPass(client, rules, single_type(rules), baselines, on_page)
    decided = 0
    for window in windows:
        if not rules:
            store.close_unread_window(window.id)
            continue
        decided += await stream.unread_window(window, now, watch.settle, store)
    return decided


class Poller:
    """Runs polls against Immich and records their outcome in the store and the metrics."""

    def __init__(
        self,
        client: AssetSearch,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
        albums: AlbumWatcher | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._albums = albums

    def start_baseline(self, rule_names: Iterable[str], backfill: timedelta) -> datetime:
        """On the very first start, remember where history ends so an existing library does not
        flood Discord: only assets created after ``now - backfill`` are announced."""
        baseline = self._store.get_time(BASELINE_KEY)
        if baseline is None:
            baseline = self._clock() - backfill
            self._store.set_time(BASELINE_KEY, baseline)
            self._store.set_time(STREAM_CURSOR_KEY, baseline)
            self._store.rule_baselines(rule_names, since_if_new=baseline)
        return baseline

    async def poll(self, watch: Watch) -> PollResult:
        started = time.monotonic()
        try:
            result = await self._poll(watch)
        except Exception:
            self._metrics.poll_runs.labels(result="failure").inc()
            raise
        finally:
            self._metrics.poll_duration.observe(time.monotonic() - started)
        self._metrics.poll_runs.labels(result="success").inc()
        self._metrics.last_successful_poll.set(time.time())
        return result

    async def poll_account(self, watch: Watch) -> PollResult:
        """One account's part of a poll (``engine.accounts`` keeps the poll's metrics)."""
        return await self._poll(watch)

    async def _poll(self, watch: Watch) -> PollResult:
        now = self._clock()
        store = self._store
        baselines = store.rule_baselines((r.name for r in watch.rules), since_if_new=now)
        cursor = store.get_time(STREAM_CURSOR_KEY) or now
        window = window_for(
            now, store.get_time(LAST_POLL_KEY), cursor, watch.lookback, watch.settle
        )
        totals = {"matches": 0, "queued": 0}

        def enqueue(found: list[Match]) -> None:
            rows = [
                (m.rule.name, target, m.asset)
                for m in found
                for target in watch.targets_of(m.rule.name)
            ]
            totals["matches"] += len(found)
            totals["queued"] += store.enqueue(rows, now)

        collected = await collect_matches(
            self._client, watch, window, baselines, enqueue, store, now
        )
        seen = collected.examined
        # The window's unread assets are in the store before the cursor moves past them.
        store.set_time(STREAM_CURSOR_KEY, window.stream_before)
        seen += await revisit_unread(self._client, watch, store, baselines, enqueue, now)
        store.set_time(LAST_POLL_KEY, now)
        # Sent rows older than any window a poll can reach are no longer needed for de-duplication.
        store.forget_sent_before(window.people_since - watch.lookback)
        if self._albums is not None:  # last: an album that fails does not hold up the uploads
            added = await self._albums.poll(watch.album_rules, watch.targets_of, now)
            seen += added.added
            totals["matches"] += added.matches
            totals["queued"] += added.queued
        if totals["queued"]:
            log.info(
                "poll: %s examined, %s queued",
                count(seen, "asset"),
                count(totals["queued"], "new delivery", "new deliveries"),
            )
        else:
            log.debug("poll: %s examined, nothing new", count(seen, "asset"))
        return PollResult(assets_seen=seen, matches=totals["matches"], queued=totals["queued"])
