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
* rules without people and without ``none:`` (*eager* rules) need nothing but the metadata:
  they also decide, from a cursor of their own, every asset at the first poll (or fast poll)
  whose search sees it (its metadata is there), without waiting ``settle``. The settled pass
  still decides them too, which costs one more download of each new asset and makes up for
  an asset that Immich wrote with an earlier ``createdAt`` than the eager cursor had reached
  (a clock behind the sidecar's, a long insert): nothing is lost, the outbox keeps it once.

Person rules need no such wait: Immich finds faces only after it read the file, so an asset
with a watched person always has its exif row and the ``withExif`` search sees it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sidecar.clock import utc_now
from sidecar.engine.albums.watcher import AlbumWatcher
from sidecar.engine.rules.matching import Match
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.holds import catch_up, hold_new, reach
from sidecar.engine.uploads.passes import (
    AssetSearch,
    Watch,
    Window,
    collect_matches,
    revisit_unread,
    window_for,
)
from sidecar.engine.uploads.stream import EAGER
from sidecar.ops.metrics import Metrics
from sidecar.wording import count

__all__ = ["LAST_POLL_KEY", "PollResult", "Poller", "Watch", "Window"]

log = logging.getLogger(__name__)

BASELINE_KEY = "baseline"
STREAM_CURSOR_KEY = "stream_cursor"
EAGER_CURSOR_KEY = "eager_cursor"
LAST_POLL_KEY = "last_successful_poll_started"


@dataclass(frozen=True)
class PollResult:
    assets_seen: int
    matches: int
    queued: int  # new outbox rows


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
        names = [r.name for r in watch.rules]
        baselines = store.rule_baselines(names, since_if_new=now)
        cursor = store.get_time(STREAM_CURSOR_KEY) or now
        last_poll = store.get_time(LAST_POLL_KEY)
        window = window_for(
            now,
            last_poll,
            cursor,
            watch.lookback,
            watch.settle,
            store.get_time(EAGER_CURSOR_KEY),
        )
        totals = {"matches": 0, "queued": 0}

        def enqueue(found: list[Match]) -> None:
            totals["matches"] += len(found)
            totals["queued"] += self._enqueue(watch, found, now)

        hold_new(store, watch, cursor, last_poll, now)
        seen = await catch_up(self._client, store, watch, baselines, enqueue, cursor, now)
        collected = await collect_matches(
            self._client, watch, window, baselines, enqueue, store, now
        )
        seen += collected.examined
        # The window's unread assets are in the store before the cursors move past them.
        store.set_time(STREAM_CURSOR_KEY, window.stream_before)
        store.set_time(EAGER_CURSOR_KEY, window.eager_before or now)
        seen += await revisit_unread(self._client, watch, store, baselines, enqueue, now)
        store.set_time(LAST_POLL_KEY, now)
        # Sent rows older than any window a poll (or a rule's catch-up) can reach are no longer
        # needed for de-duplication.
        held = reach(store.rule_holds(), watch)
        oldest = window.people_since - watch.lookback
        store.forget_sent_before(oldest if held is None else min(oldest, held))
        if self._albums is not None:  # last: an album that fails does not hold up the uploads
            added = await self._albums.poll(
                watch.album_rules, watch.targets_of, now, keep_all=watch.albums_held
            )
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

    def _enqueue(self, watch: Watch, found: list[Match], now: datetime) -> int:
        rows = [(m.rule.name, t, m.asset) for m in found for t in watch.targets_of(m.rule.name)]
        return self._store.enqueue(rows, now)

    async def anything_new(self, since: datetime) -> bool:
        """The new-upload check: was anything created at or after ``since`` (or, while assets
        wait for their metadata for the rules without people, changed: extraction changes
        them)? One small count, two while such assets wait."""
        if await self._client.count_since(since):
            return True
        waiting = any(w.kind == EAGER for w in self._store.unread_windows())
        return waiting and bool(await self._client.count_since(since, changed=True))

    async def fast_poll(self, watch: Watch, since: datetime, *, people: bool = True) -> int:
        """One fast poll: the people rules over the assets created since ``since`` (unless
        ``people`` is False), the rules without people (and without ``none:``) over what is new
        since their cursor and their unread windows; returns how many new deliveries it queued.
        The regular poll's cursor and time stay as they are: it still decides the rest."""
        rules = (*(watch.person_rules if people else ()), *watch.eager_rules)
        if not rules:
            return 0
        now = self._clock()
        store = self._store
        baselines = store.rule_baselines((r.name for r in rules), since_if_new=now)
        cursor = store.get_time(STREAM_CURSOR_KEY) or now
        window = Window(
            people_since=max(since, now - watch.lookback),
            stream_after=now,
            stream_before=now,
            settled_before=now - watch.settle,
            eager_after=store.get_time(EAGER_CURSOR_KEY) or cursor,
            eager_before=now,
        )
        queued = 0

        def enqueue(found: list[Match]) -> None:
            nonlocal queued
            queued += self._enqueue(watch, found, now)

        fast = replace(watch, rules=rules)
        await collect_matches(self._client, fast, window, baselines, enqueue, store, now)
        store.set_time(EAGER_CURSOR_KEY, now)
        await revisit_unread(self._client, fast, store, baselines, enqueue, now, (EAGER,))
        return queued
