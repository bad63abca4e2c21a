"""What an accepted push does: read the asset from Immich, decide the rules that need no
person at once, and open a fast-poll window for the people rules.

An ``AssetMetadataExtraction`` push means the asset's metadata is there, which is what
``poll.settle`` waits for: rules without people (and without ``none:``) decide the asset now,
through the same rules, outbox and exactly-once path as a poll (the outbox is unique per rule,
target and asset, so the poll that sees the asset later adds nothing). Rules with ``none:``
still wait ``settle`` (a face may exclude the asset: one extra poll is planned for when it is
settled), and rules with people need faces, which arrive later: the fast polls look for them.
An ``AssetCreate`` push means "poll soon": the window and the extra poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from sidecar.engine.rules.matching import matches_for
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichClientError, ImmichError
from sidecar.ops.metrics import Metrics
from sidecar.push.receiver import PushEvent

log = logging.getLogger(__name__)

METADATA = "AssetMetadataExtraction"
QUEUE_LIMIT = 1_000  # events waiting; beyond it a push is dropped and the poll catches up


class PushHandler:
    """Takes accepted push events (``offer``) and works through them one at a time (``run``)."""

    def __init__(
        self,
        client: ImmichClient,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime],
        watch: Callable[[], Watch | None],
        lock: asyncio.Lock,
        uploads_seen: Callable[[datetime], object],
        delivered: Callable[[], None],
        poll_soon: Callable[[float], None] = lambda delay: None,
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._watch = watch
        self._lock = lock
        self._uploads_seen = uploads_seen
        self._delivered = delivered
        self._queue: asyncio.Queue[PushEvent] = asyncio.Queue(QUEUE_LIMIT)
        self._poll_soon = poll_soon  # one extra regular poll in so many seconds

    def offer(self, event: PushEvent) -> None:
        now = self._clock()
        self._store.set_time(LAST_PUSH_KEY, now)
        self._uploads_seen(now)
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("push: too many pushes waiting; the next poll picks this one up")

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                getting = asyncio.ensure_future(self._queue.get())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    return
                await self.handle(getting.result())
        finally:
            stopping.cancel()

    async def handle(self, event: PushEvent) -> str:
        """Decide one pushed asset; returns the result counted in ``push_assets``."""
        result = await self._decide(event)
        if event.trigger == METADATA:
            self._metrics.push_assets.labels(result=result).inc()
        return result

    async def _decide(self, event: PushEvent) -> str:
        watch = self._watch()
        if watch is None:
            return "nothing"
        waiting = any(r.none for r in watch.stream_rules)
        if event.trigger != METADATA or waiting:
            # "Poll soon": once settled, the asset is decided by the regular rules (an
            # AssetCreate push, and rules with none: that wait settle), not an interval later.
            self._poll_soon(watch.settle.total_seconds() + 1)
        if event.trigger != METADATA:
            return "nothing"
        rules = tuple(r for r in watch.stream_rules if not r.none)
        if not rules:
            return "nothing"
        try:
            asset = await self._client.asset(event.asset_id)
        except ImmichClientError as err:  # a forged or deleted id: Immich refuses it
            log.warning("push: Immich does not know the pushed asset (%s)", err)
            return "unknown"
        except ImmichError as err:
            log.warning("push: cannot read the pushed asset (%s); the poll will", err)
            return "failed"
        async with self._lock:
            now = self._clock()
            baselines = self._store.rule_baselines((r.name for r in rules), since_if_new=now)
            found = matches_for(rules, [asset], baselines)
            rows = [(m.rule.name, t, m.asset) for m in found for t in watch.targets_of(m.rule.name)]
            queued = self._store.enqueue(rows, now)
        if not queued:
            return "nothing"
        log.info("push: %s queued for a pushed asset", queued)
        self._delivered()
        return "queued"
