"""Several Immich accounts in one sidecar: one client per account, the check that no two keys
belong to the same user, and the poll that runs each account's part on its own.

Each account polls with its own cursors (``engine.store_accounts``) and its own people's ids;
all write into the one outbox, whose key does not name the account, so an asset reached through
two accounts (a partner's photo in both timelines) is delivered once. An account that fails
(a revoked key, a 401) is reported once per outage and skipped; its cursors stay where they
were, so its next successful poll reaches back over the outage.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sidecar.clock import utc_now
from sidecar.config.model import DEFAULT_ACCOUNT, PeopleAliases, Settings
from sidecar.engine.access import FeatureAccess
from sidecar.engine.albums.accounts import AlbumsAcross
from sidecar.engine.albums.watcher import AlbumClient, AlbumWatcher
from sidecar.engine.posts.accounts import MergedAccounts, PostSource
from sidecar.engine.rules.matching import NO_ALIASES, RuleResolutionError
from sidecar.engine.shared_links import SharedLinks
from sidecar.engine.store.accounts import (
    LEGACY_ACCOUNT,
    AccountStore,
    adopt_account,
    drop_account,
    stored_accounts,
)
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import LAST_POLL_KEY, Poller, PollResult, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichClientError, ImmichError, ImmichPermissionError
from sidecar.immich.models import VideoFile, VideoTooLarge
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImmichAccount:
    """One account the sidecar runs: its name in the config and the client with its key."""

    name: str
    client: ImmichClient
    line: int | None = None  # where its entry is in the config file


class Accounts:
    """The running accounts, in config order (the first is the default one)."""

    def __init__(self, accounts: Sequence[ImmichAccount]) -> None:
        if not accounts:
            raise ValueError("at least one account")
        self._accounts = tuple(accounts)

    @classmethod
    async def open(
        cls, settings: Settings, metrics: Metrics, stack: contextlib.AsyncExitStack
    ) -> Accounts:
        opened = []
        for account in settings.immich.accounts:
            client = await stack.enter_async_context(
                ImmichClient(settings.immich.url, account.api_key, metrics)
            )
            opened.append(ImmichAccount(account.name, client, account.line))
        return cls(opened)

    def __iter__(self) -> Iterator[ImmichAccount]:
        return iter(self._accounts)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def first(self) -> ImmichAccount:
        return self._accounts[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self._accounts)

    def albums(self) -> AlbumClient:
        """Album endpoints across the accounts (the first alone when it is the only one)."""
        if len(self._accounts) == 1:
            return self.first.client
        return AlbumsAcross([a.client for a in self._accounts])

    def post_source(
        self, names: Sequence[str] = (), aliases: PeopleAliases = NO_ALIASES
    ) -> PostSource:
        """What a post with ``accounts: names`` asks (empty: every account)."""
        chosen = [a.client for a in self._accounts if not names or a.name in names]
        return chosen[0] if len(chosen) == 1 else MergedAccounts(chosen, aliases)

    def get(self, name: str | None) -> ImmichAccount:
        """The account of that name (None: the first)."""
        return next((a for a in self._accounts if a.name == name), self.first)

    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]:
        """An asset's picture through the first account that can see it (sinks' source)."""
        last: ImmichClientError | None = None
        for account in self._accounts:
            try:
                return await account.client.asset_thumbnail(asset_id, size)
            except ImmichClientError as err:  # not this user's asset, or this key fails
                last = err
        assert last is not None
        raise last

    async def video_playback(self, asset_id: str, max_bytes: int) -> VideoFile | VideoTooLarge:
        """A video's playable file through the first account that can see it."""
        last: ImmichClientError | None = None
        for account in self._accounts:
            try:
                return await account.client.video_playback(asset_id, max_bytes)
            except ImmichClientError as err:
                last = err
        assert last is not None
        raise last

    def clients(self) -> list[ImmichClient]:
        """Every account's client, the first account's first."""
        return [a.client for a in self._accounts]

    def link_maker(
        self, store: Store, access: FeatureAccess, clock: Callable[[], datetime]
    ) -> SharedLinks:
        """Shared links for the targets' messages, made through the first of these accounts
        Immich lets share them, kept in ``store``."""
        return SharedLinks(store, self.clients, access, clock)


async def check_keys(accounts: Accounts, settings: Settings) -> dict[str, str]:
    """Which Immich user each account's key belongs to (``GET /users/me``; only asked with two
    accounts or more). Two keys of the same user are refused, naming the second's entry."""
    if len(accounts) < 2:
        return {}
    users: dict[str, str] = {}
    owner_of: dict[str, str] = {}
    problems = []
    for account in accounts:
        try:
            user = await account.client.me()
        except ImmichPermissionError:
            log.warning(
                "account %s: the key lacks user.read, so it cannot be told apart from the "
                "other accounts' keys; add user.read to it",
                account.name,
            )
            continue
        user_id = user.id
        users[account.name] = user_id
        if user_id in owner_of:
            line = f":{account.line}" if account.line is not None else ""
            problems.append(
                f"{settings.source}{line}: immich.accounts.{account.name}: this key belongs to "
                f"the same Immich user ({user.name or user_id}) as account "
                f"{owner_of[user_id]}; each account needs a key of its own user"
            )
        owner_of.setdefault(user_id, account.name)
    if problems:
        raise RuleResolutionError(problems)
    return users


class AccountPolls:
    """Polls every account with its own cursors; one failing account does not stop the others."""

    def __init__(
        self,
        accounts: Accounts,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
        albums: AlbumWatcher | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._stores = {a.name: AccountStore(store, a.name) for a in accounts}
        self._pollers = {
            a.name: Poller(
                a.client,
                self._stores[a.name],
                metrics,
                clock,
                albums if a is accounts.first else None,  # album rules run in the first account
            )
            for a in accounts
        }
        self._failing: dict[str, str] = {}  # account -> why, while it fails

    def start(self, rule_names: Iterable[str], backfill: timedelta) -> None:
        """Bring the state file in line with the configured accounts: the first takes over the
        state of a single-key sidecar, an account no longer configured loses its cursors (with
        a warning), a new one starts from now (or ``poll.backfill`` before)."""
        names = list(self._pollers)
        first = names[0]
        for old in (LEGACY_ACCOUNT, DEFAULT_ACCOUNT):
            if old not in names and adopt_account(self._store, old, first):
                log.info("account %s keeps the poll state of the single-key configuration", first)
                break
        for stale in stored_accounts(self._store):
            if stale not in names:
                log.warning(
                    "account %s is no longer in immich.accounts: its cursors are dropped "
                    "(adding it back starts it from then)",
                    stale or "(single key)",
                )
                drop_account(self._store, stale)
        wanted = list(rule_names)
        for poller in self._pollers.values():
            poller.start_baseline(wanted, backfill)
        for name in names:
            self._metrics.account_up.labels(account=name).set(1)

    async def poll(self, watches: Mapping[str, Watch]) -> PollResult:
        """Poll each account in turn. Raises the first account's error only when every
        account failed (Immich itself is down, or the only key is bad)."""
        started = time.monotonic()
        totals = PollResult(0, 0, 0)
        errors: list[ImmichError] = []
        try:
            for name, poller in self._pollers.items():
                try:
                    result = await poller.poll_account(watches[name])
                except ImmichError as err:
                    errors.append(err)
                    self._failed(name, err)
                    continue
                self._recovered(name)
                totals = PollResult(
                    totals.assets_seen + result.assets_seen,
                    totals.matches + result.matches,
                    totals.queued + result.queued,
                )
            if len(errors) == len(self._pollers):
                raise errors[0]
        except Exception:
            self._metrics.poll_runs.labels(result="failure").inc()
            raise
        finally:
            self._metrics.poll_duration.observe(time.monotonic() - started)
        self._forget_old(watches)
        self._metrics.poll_runs.labels(result="success").inc()
        self._metrics.last_successful_poll.set(time.time())
        return totals

    def _failed(self, name: str, err: ImmichError) -> None:
        if len(self._pollers) == 1:
            return  # a single account's failure is the poll's (reported by the caller)
        self._metrics.account_up.labels(account=name).set(0)
        if name in self._failing:
            log.debug("account %s still fails (%s)", name, err)
        else:
            self._metrics.account_outages.labels(account=name).inc()
            log.error(
                "account %s fails (%s); the other accounts go on, and %s resumes where it "
                "stopped once Immich accepts its key again",
                name,
                err,
                name,
            )
        self._failing[name] = str(err)

    def _recovered(self, name: str) -> None:
        self._metrics.account_up.labels(account=name).set(1)
        if self._failing.pop(name, None) is not None:
            log.info("account %s works again; catching up from where it stopped", name)

    def _forget_old(self, watches: Mapping[str, Watch]) -> None:
        """Sent rows no account's window can reach again (the slowest account decides, so an
        account back from an outage finds what the others sent meanwhile)."""
        moments = [
            last - 2 * watches[name].lookback
            for name, account_store in self._stores.items()
            if (last := account_store.get_time(LAST_POLL_KEY)) is not None
        ]
        if moments and len(moments) == len(self._stores):
            self._store.forget_sent_before(min(moments))

    def problems(self) -> list[str]:
        """Why some accounts fail, for /readyz."""
        return [f"Immich account {name} fails: {why}" for name, why in self._failing.items()]

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(self._failing)

    @property
    def failing_reasons(self) -> dict[str, str]:
        """Account -> why it fails, while it does."""
        return dict(self._failing)

    def last_success(self) -> datetime | None:
        """When the most recent successful poll of any account started."""
        times = [t for s in self._stores.values() if (t := s.get_time(LAST_POLL_KEY)) is not None]
        return max(times) if times else None
