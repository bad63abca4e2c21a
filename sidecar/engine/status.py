"""What the running sidecar says about itself: why it is not ready (``/readyz``) and the
snapshot ``/immich status`` shows."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sidecar.config.model import Settings
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import AccountPolls
from sidecar.engine.albums.watcher import AlbumWatcher
from sidecar.engine.poll import ImmichPoll
from sidecar.engine.reload import ConfigReloader
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store


@dataclass(frozen=True)
class StatusInfo:
    immich_reachable: bool
    immich_version: str | None
    last_successful_poll: datetime | None
    outbox_pending: int
    config_loaded_at: datetime
    outbox_failed: int = 0  # dead letters
    albums: tuple[tuple[str, int], ...] = ()  # (name, asset count) of each watched album
    features_off: tuple[str, ...] = ()  # one sentence each: what is off and the fix
    failing_accounts: tuple[str, ...] = ()  # "Immich account mum fails: ..."
    accounts: tuple[str, ...] = ()  # the configured accounts, in config order
    failing: tuple[tuple[str, str], ...] = ()  # (account, why it fails now)
    reload_error: tuple[str, ...] = ()  # why the file on disk is not the running config
    last_push: datetime | None = None  # when Immich last pushed (any account)
    pushed: tuple[str, ...] = ()  # the accounts whose uploads Immich pushes


class SidecarStatus:
    """Reads the parts it reports on; ``settings()`` and ``loaded_at()`` are the running
    config's, ``started`` the ``time.monotonic()`` of the sidecar's start."""

    def __init__(
        self,
        poll: ImmichPoll,
        reloader: ConfigReloader,
        access: FeatureAccess,
        polls: AccountPolls,
        store: Store,
        albums: AlbumWatcher,
        settings: Callable[[], Settings],
        loaded_at: Callable[[], datetime],
        started: float,
        pushed: Callable[[], Collection[str]] = tuple,
    ) -> None:
        self._pushed = pushed
        self._poll = poll
        self._reloader = reloader
        self._access = access
        self._polls = polls
        self._store = store
        self._albums = albums
        self._settings = settings
        self._loaded_at = loaded_at
        self._started = started

    def readiness(self) -> list[str]:
        """Why the sidecar is not ready (empty when it is): Immich did not answer at the last
        attempt, the last poll failed or is older than three intervals, or the config file holds
        a change that does not run (rejected, or waiting for Immich)."""
        reasons = []
        if self._poll.error is not None:
            reasons.append(self._poll.error)
        elif not self._poll.connected:
            reasons.append("not connected to Immich yet")
        limit = 3 * self._settings().poll.interval
        since = self._poll.last_success
        if since is None and time.monotonic() - self._started > limit:
            reasons.append(f"no successful poll since start ({limit:g}s ago or more)")
        if since is not None and time.monotonic() - since > limit:
            reasons.append(f"last successful poll more than {limit:g}s ago")
        if problem := self._reloader.problem():
            reasons.append(problem)
        off = self._access.off_sentences(safety=False) + self._poll.off_elsewhere(safety=False)
        return reasons + off + self._polls.problems()

    def snapshot(self) -> StatusInfo:
        counts = self._store.counts()
        return StatusInfo(
            immich_reachable=self._poll.connected and self._poll.error is None,
            immich_version=self._poll.version,
            last_successful_poll=self._polls.last_success(),
            outbox_pending=counts.pending,
            outbox_failed=counts.failed,
            config_loaded_at=self._loaded_at(),
            albums=tuple(self._albums.watched_albums()),
            features_off=tuple(self._access.off_sentences() + self._poll.off_elsewhere()),
            failing_accounts=tuple(self._polls.problems()),
            accounts=self._settings().immich.account_names,
            failing=tuple(self._polls.failing_reasons.items()),
            reload_error=self._reloader.last_error,
            last_push=self._store.get_time(LAST_PUSH_KEY),
            pushed=tuple(sorted(self._pushed())),
        )

    async def provide(self) -> StatusInfo:
        """The snapshot, as the bot's ``/immich status`` asks for it."""
        return self.snapshot()
