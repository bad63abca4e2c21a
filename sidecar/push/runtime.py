"""The push endpoint, the new-upload checks and the fast polls as one part of the running
sidecar (``app.py`` starts, feeds and stops it).

Each account has its own checks and fast polls (``engine.uploads.fast_poll``). With push, an
account whose uploads are pushed (the first account, and every other whose workflow ``push
setup`` made is found at start: a workflow fires for its owner's uploads only) is not checked:
its pushes open its fast-poll windows; every other account is checked every ``poll.fast.every``.
A pushed asset is read with its uploader's key (the push names the owner).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from datetime import datetime

from sidecar.config.model import Settings
from sidecar.engine.accounts import AccountPolls, Accounts
from sidecar.engine.planning import build_watch
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.store.accounts import AccountStore
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.fast_poll import FastPoller
from sidecar.engine.uploads.passes import Watch
from sidecar.immich.errors import ImmichError
from sidecar.ops.metrics import Metrics
from sidecar.push.handler import PushHandler
from sidecar.push.receiver import PushReceiver
from sidecar.push.setup import has_workflow

log = logging.getLogger(__name__)


class PushRuntime:
    """Checks and fast polls always (unless ``poll.fast.for`` is 0s); the push endpoint when
    ``push:`` is configured. ``settings()`` and ``rules()`` are the running config's (None
    until Immich answered); ``held(account)`` the rules of an account that are off."""

    def __init__(
        self,
        accounts: Accounts,
        polls: AccountPolls,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime],
        settings: Callable[[], Settings],
        rules: Callable[[], AccountRules | None],
        lock: asyncio.Lock,
        delivered: Callable[[], None],
        poll_soon: Callable[[float], None] = lambda delay: None,
    ) -> None:
        self._polls = polls
        self._clock = clock
        self._settings = settings
        self._rules = rules
        self._lock = lock
        self._delivered = delivered
        self._metrics = metrics
        self._store = store
        self._accounts = accounts
        self._first = polls.accounts[0]
        push = settings().push
        # Whose pushes say what is new (not checked): the first account's, and those of the
        # accounts whose workflow is found at start.
        self.pushed = {self._first} if push else set()
        self.fast = {
            account: FastPoller(
                functools.partial(self._fast_poll, account),
                self._fast_settings,
                metrics,
                clock,
                None if account in self.pushed else functools.partial(self._check, account),
            )
            for account in polls.accounts
        }
        self.handler = PushHandler(
            accounts.readers,
            store,
            metrics,
            clock,
            self._watch,
            lock,
            self._uploads_seen,
            delivered,
            poll_soon,
        )
        self.receiver = PushReceiver(push, metrics, self.handler.offer) if push else None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, stop: asyncio.Event) -> None:
        if self.receiver is not None:
            await self.receiver.start()
            log.info("listening for Immich pushes on port %d", self.receiver.port)
            await self._find_workflows()
        self._tasks = [
            asyncio.create_task(fast.run(stop), name=f"fast-polls-{account}")
            for account, fast in self.fast.items()
        ]
        self._tasks.append(asyncio.create_task(self.handler.run(stop), name="pushes"))

    async def stop(self) -> None:
        if self.receiver is not None:
            await self.receiver.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _find_workflows(self) -> None:
        """The other accounts whose workflow is there: their pushes say what is new."""
        for account in self._accounts:
            if account.name in self.pushed:
                continue
            try:
                found = await has_workflow(account.client)
            except ImmichError as err:  # no workflow.read, 2.x, down: checked, as without push
                log.debug("account %s: its push workflow could not be read (%s)", account.name, err)
                continue
            if found:
                self.pushed.add(account.name)
        if len(self._accounts) > 1:
            log.info("push: uploads of %s are pushed", ", ".join(sorted(self.pushed)))

    def _uploads_seen(self, owner_id: str | None, since: datetime) -> None:
        """A push: the uploader's account (each pushed one when Immich did not say whose it
        is) gives its people rules a fast-poll window."""
        owner = self._accounts.account_of(owner_id)
        if owner is not None:  # push status says when each account's last push came
            AccountStore(self._store, owner).set_time(LAST_PUSH_KEY, since)
        for account in [owner] if owner is not None else sorted(self.pushed):
            watch = self._watch(account)
            if watch is not None and watch.person_rules:
                self.fast[account].uploads_seen(since)

    def _watch(self, account: str) -> Watch | None:
        rules = self._rules()
        if rules is None:
            return None
        return build_watch(self._settings(), rules.by_account.get(account, ()))

    def _fast_settings(self) -> tuple[float, float, float]:
        poll = self._settings().poll
        return poll.fast_every, poll.fast_for, poll.interval

    async def _check(self, account: str, since: datetime) -> bool | None:
        """Anything new in ``account`` since ``since``? None when there is nothing to look
        for (no rule a new upload concerns, fast polls off) or Immich did not answer."""
        watch = self._watch(account)
        if watch is None or self._settings().poll.fast_for <= 0 or account in self.pushed:
            return None
        if not watch.person_rules and not watch.eager_rules:
            return None
        try:
            return await self._polls.anything_new(account, since)
        except ImmichError as err:  # the regular poll is the safety net; nothing is lost
            self._metrics.upload_checks.labels(result="failure").inc()
            log.debug("new-upload check of account %s failed: %s", account, err)
            return None

    async def _fast_poll(self, account: str, since: datetime, people: bool) -> bool:
        try:
            async with self._lock:
                watch = self._watch(account)
                if watch is None:
                    return False
                queued = await self._polls.fast_poll(account, watch, since, people=people)
        except ImmichError as err:
            log.warning("fast poll failed: %s", err)
            return False
        if queued:
            log.info("fast poll: %d new deliveries", queued)
            self._delivered()
        return True
