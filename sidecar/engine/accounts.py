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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
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
from sidecar.engine.uploads.holds import reach
from sidecar.engine.uploads.passes import Watch
from sidecar.engine.uploads.poller import LAST_POLL_KEY, Poller, PollResult
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
        self._owner_of: dict[str, str] = {}  # Immich user id -> account (learnt by check_keys)

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

    def albums(self, without: Collection[str] = ()) -> AlbumClient:
        """Album endpoints across the accounts (the first alone when it is the only one),
        leaving out the accounts ``without`` names."""
        chosen = [a.client for a in self._accounts if a.name not in without]
        return chosen[0] if len(chosen) == 1 else AlbumsAcross(chosen)

    @contextlib.contextmanager
    def keys_of(self, new: Settings, running: Settings) -> Iterator[list[str]]:
        """The keys of ``new`` while a reload looks its names up; the running config's again
        when the reload does not apply (an exception). Yields the accounts whose key changed."""
        changed = self.use_keys(new)
        try:
            yield changed
        except BaseException:
            self.use_keys(running)
            raise
        for name in changed:
            if len(self._accounts) == 1:
                log.info("a new Immich API key is in use (the cursors are kept)")
            else:
                log.info("account %s: a new API key is in use (its cursors are kept)", name)

    def use_keys(self, settings: Settings) -> list[str]:
        """Give each account the API key ``settings`` has for it (the same account names);
        returns the accounts whose key changed. Their clients stay, and so does everything
        that holds them (pollers, cursors, the bot), sending the new key from now on."""
        keys = {account.name: account.api_key for account in settings.immich.accounts}
        changed = []
        for account in self._accounts:
            key = keys.get(account.name)
            if key is not None and key != account.client.api_key:
                account.client.use_key(key)
                changed.append(account.name)
        return changed

    def post_source(
        self, names: Sequence[str] = (), aliases: PeopleAliases = NO_ALIASES
    ) -> PostSource:
        """What a post with ``accounts: names`` asks (empty: every account)."""
        chosen = [a.client for a in self._accounts if not names or a.name in names]
        return chosen[0] if len(chosen) == 1 else MergedAccounts(chosen, aliases)

    def remember_users(self, users: Mapping[str, str]) -> None:
        """Account -> the Immich user its key belongs to, as ``check_keys`` found."""
        self._owner_of.update({user_id: account for account, user_id in users.items()})

    def account_of(self, user_id: str | None) -> str | None:
        """The account whose key is that Immich user's (None: unknown, or one account)."""
        return self._owner_of.get(user_id) if user_id else None

    def readers(self, owner_id: str | None) -> list[tuple[str, ImmichClient]]:
        """The accounts to read an asset of ``owner_id`` through: its owner's first."""
        owner = self.account_of(owner_id)
        ordered = sorted(self._accounts, key=lambda a: a.name != owner)  # stable: config order
        return [(a.name, a.client) for a in ordered]

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


async def check_keys(
    accounts: Accounts, settings: Settings, failed: dict[str, ImmichError] | None = None
) -> dict[str, str]:
    """Which Immich user each account's key belongs to (``GET /users/me``; only asked with two
    accounts or more). Two keys of the same user are refused, naming the second's entry. With
    ``failed``, an account Immich does not answer (down, its key refused) goes there instead
    of raising, and is not checked."""
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
        except ImmichError as err:
            if failed is None:
                raise
            failed[account.name] = err
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
    accounts.remember_users(users)
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

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(self._pollers)

    async def anything_new(self, account: str, since: datetime) -> bool:
        """The new-upload check of one account (``Poller.anything_new``)."""
        return await self._pollers[account].anything_new(since)

    async def fast_poll(
        self, account: str, watch: Watch, since: datetime, *, people: bool = True
    ) -> int:
        """One fast poll of one account (``Poller.fast_poll``)."""
        return await self._pollers[account].fast_poll(watch, since, people=people)

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

    async def poll(
        self,
        watches: Mapping[str, Watch],
        refused: Callable[[str, ImmichPermissionError], bool] | None = None,
    ) -> PollResult:
        """Poll each account that has a watch in turn (one without waits for its names: its
        cursors stay). Raises the first account's error only when every account polled failed
        (Immich itself is down, or the only key is bad). A 403 ``refused`` takes is not one."""
        started = time.monotonic()
        totals = PollResult(0, 0, 0)
        errors: list[ImmichError] = []
        polled = [(name, poller) for name, poller in self._pollers.items() if name in watches]
        try:
            for name, poller in polled:
                try:
                    result = await poller.poll_account(watches[name])
                except ImmichPermissionError as err:
                    if len(self._pollers) > 1 and refused is not None and refused(name, err):
                        continue  # its rules needing that are held from the next poll on
                    errors.append(err)
                    self._failed(name, str(err))
                    continue
                except ImmichError as err:
                    errors.append(err)
                    self._failed(name, str(err))
                    continue
                self._recovered(name)
                totals = PollResult(
                    totals.assets_seen + result.assets_seen,
                    totals.matches + result.matches,
                    totals.queued + result.queued,
                )
            if polled and len(errors) == len(polled):
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

    def waiting(self, unresolved: Mapping[str, str]) -> None:
        """Accounts whose names Immich did not answer for: not polled, failing until polled."""
        for name, why in unresolved.items():
            self._failed(name, why)

    def _failed(self, name: str, err: str) -> None:
        if len(self._pollers) == 1:
            return  # a single account's failure is the poll's (reported by the caller)
        self._metrics.account_up.labels(account=name).set(0)
        if name in self._failing:
            log.debug("account %s still fails (%s)", name, err)
        else:
            self._metrics.account_outages.labels(account=name).inc()
            log.error(
                "account %s fails (%s); the other accounts go on, and %s resumes where it "
                "stopped once Immich accepts its key again (a new key in the config or its key "
                "file applies without a restart)",
                name,
                err,
                name,
            )
        self._failing[name] = err

    def _recovered(self, name: str) -> None:
        self._metrics.account_up.labels(account=name).set(1)
        if self._failing.pop(name, None) is not None:
            log.info("account %s works again; catching up from where it stopped", name)

    def _forget_old(self, watches: Mapping[str, Watch]) -> None:
        """Sent rows no account's window can reach again (the slowest account decides, so an
        account back from an outage finds what the others sent meanwhile)."""
        if any(name not in watches for name in self._stores):
            return  # an account waiting for its names reaches back to where it stopped
        moments = [
            last - 2 * watches[name].lookback
            for name, account_store in self._stores.items()
            if (last := account_store.get_time(LAST_POLL_KEY)) is not None
        ]
        if moments and len(moments) == len(self._stores):
            # ... nor the catch-up of a rule held while its feature was off
            held = [
                moment
                for name, account_store in self._stores.items()
                if (moment := reach(account_store.rule_holds(), watches[name])) is not None
            ]
            self._store.forget_sent_before(min(moments + held))

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
