"""The push endpoint and the fast polls as one part of the running sidecar (``app.py`` starts,
feeds and stops it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sidecar.config.model import Settings
from sidecar.engine.planning import build_watch
from sidecar.engine.rules.matching import CompiledRule
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.fast_poll import FastPoller, poll_people
from sidecar.engine.uploads.poller import Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.ops.metrics import Metrics
from sidecar.push.handler import PushHandler
from sidecar.push.receiver import PushReceiver

log = logging.getLogger(__name__)


class PushRuntime:
    """Fast polls always (unless ``poll.fast.for`` is 0s); the push endpoint when ``push:`` is
    configured. ``settings()`` and ``rules()`` are the running config's (None until Immich
    answered)."""

    def __init__(
        self,
        client: ImmichClient,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime],
        settings: Callable[[], Settings],
        rules: Callable[[], tuple[CompiledRule, ...] | None],
        lock: asyncio.Lock,
        delivered: Callable[[], None],
        poll_soon: Callable[[float], None] = lambda delay: None,
    ) -> None:
        self._client = client
        self._store = store
        self._clock = clock
        self._settings = settings
        self._rules = rules
        self._lock = lock
        self._delivered = delivered
        self.fast = FastPoller(self._fast_poll, self._fast_settings, metrics, clock)
        self.handler = PushHandler(
            client,
            store,
            metrics,
            clock,
            self._watch,
            lock,
            self._uploads_seen,
            delivered,
            poll_soon,
        )
        push = settings().push
        self.receiver = PushReceiver(push, metrics, self.handler.offer) if push else None
        self._probe_from: datetime | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, stop: asyncio.Event) -> None:
        if self.receiver is not None:
            await self.receiver.start()
            log.info("listening for Immich pushes on port %d", self.receiver.port)
        self._tasks = [
            asyncio.create_task(self.fast.run(stop), name="fast-polls"),
            asyncio.create_task(self.handler.run(stop), name="pushes"),
        ]

    async def stop(self) -> None:
        if self.receiver is not None:
            await self.receiver.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def after_poll(self, started: datetime) -> None:
        """After a successful regular poll: were there new uploads since the previous one? One
        small search, only while people rules exist and no push endpoint tells us instead."""
        since, self._probe_from = self._probe_from, started
        watch = self._watch()
        settings = self._settings()
        if since is None or watch is None or not watch.person_rules:
            return
        if self.receiver is not None or settings.poll.fast_for <= 0 or self.fast.active():
            return
        try:
            if await self._client.uploads_since(since):
                self.fast.uploads_seen(since)
        except ImmichError as err:  # the next poll tries again; nothing is lost meanwhile
            log.debug("new-upload check failed: %s", err)

    def _uploads_seen(self, since: datetime) -> None:
        watch = self._watch()
        if watch is not None and watch.person_rules:
            self.fast.uploads_seen(since)

    def _watch(self) -> Watch | None:
        rules = self._rules()
        return None if rules is None else build_watch(self._settings(), rules)

    def _fast_settings(self) -> tuple[float, float, float]:
        poll = self._settings().poll
        return poll.fast_every, poll.fast_for, poll.interval

    async def _fast_poll(self, since: datetime) -> bool:
        try:
            async with self._lock:
                watch = self._watch()
                if watch is None:
                    return False
                queued = await poll_people(self._client, self._store, watch, since, self._clock())
        except ImmichError as err:
            log.warning("fast poll failed: %s", err)
            return False
        if queued:
            log.info("fast poll: %d new deliveries", queued)
            self._delivered()
        return True
