"""The poll job: connect to Immich, poll every account, and remember why the last attempt failed.

``ImmichPoll`` owns the connection (the server version and the key's permissions checked
against the Immich that answers now) and the outage bookkeeping: one log line per outage, and
the reason ``/readyz`` gives. ``PollJob`` is the scheduler's side: when a poll runs (every
``poll.interval``, and once soon after a push), under the poll lock, after the reload check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sidecar.clock import utc_now
from sidecar.config.model import KeyPath, Settings, format_key_path
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import AccountPolls, Accounts
from sidecar.engine.lookup import ConfigLookup
from sidecar.engine.members import MemberDirectory
from sidecar.engine.planning import build_watch, rules_off
from sidecar.engine.reload import ConfigReloader
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.session import ImmichSession
from sidecar.engine.store.owner import StateOwnerError
from sidecar.immich.errors import (
    ImmichAuthError,
    ImmichClientError,
    ImmichError,
    ImmichPermissionError,
)
from sidecar.immich.permissions import CLAIMS, KEY_SETTINGS_HINT
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)

POLL_JOB_ID = "poll"
PUSH_POLL_JOB_ID = "poll-after-push"
PEOPLE_JOB_ID = "people-check"
PEOPLE_CHECK_HOURS = 1  # names and linked people looked up again (renames, merges in Immich)


class ImmichPoll:
    """Connects to Immich and polls it. ``settings()`` is the running config; ``lookup`` the
    session's resolver, whose member links the directory follows; ``stop`` is set when the
    state file turns out to be another user's (``fatal`` says so)."""

    def __init__(
        self,
        settings: Callable[[], Settings],
        session: ImmichSession,
        accounts: Accounts,
        polls: AccountPolls,
        lookup: ConfigLookup,
        directory: MemberDirectory,
        metrics: Metrics,
        stop: asyncio.Event,
        *,
        bot: bool,
    ) -> None:
        self._settings = settings
        self._session = session
        self._accounts = accounts
        self._client = accounts.first.client
        self._access: FeatureAccess = session.access
        self._polls = polls
        self._lookup = lookup
        self._directory = directory
        self._metrics = metrics
        self._stop = stop
        self._bot = bot
        # Connected: the version and the key's permissions were checked against the Immich
        # that answers now. A reload never makes it so, an Immich outage undoes it.
        self.connected = False
        self.version: str | None = None
        self.error: str | None = None  # why the last poll attempt failed
        self.last_success: float | None = None  # time.monotonic() of the last good poll
        self.fatal: StateOwnerError | None = None  # why the sidecar stopped by itself
        self._problem: tuple[object, ...] | None = None  # the last outage logged
        self._unresolved: list[str] = []  # the names problems last logged

    async def connect(self) -> bool:
        """Learn the server version, then what the key allows, whose state file this is and
        the rules' names (``ImmichSession.connect``). Immich being down is not fatal (the poll
        job tries again); an unknown person name is (RuleResolutionError), and so is another
        user's state file (StateOwnerError)."""
        try:
            self.version = str(await self._client.version())
            first = self._session.rules is None
            await self._session.connect(self._settings(), bot=self._bot)
            if first:
                await self._first_connect()
        except ImmichPermissionError as err:
            if not self._session.refused(err):
                self._unusable(err)
                return False
            return await self.connect()  # again, without what the key lacks
        except ImmichError as err:
            self._unusable(err)
            return False
        self.connected = True
        again = " again" if self._problem is not None else ""
        self._problem = None
        log.info("connected to Immich %s%s", self.version, again)
        return True

    async def _first_connect(self) -> None:
        """The rules' people are known for the first time: the member links follow them."""
        rules = self._session.rules
        assert rules is not None
        self._lookup.follow(rules)
        if self._access.is_on(CLAIMS):
            await self._directory.check_people(self._lookup.people_lookups())

    def _unusable(self, err: ImmichError) -> None:
        self.connected = False
        self.error = f"Immich is not usable: {err}"
        # One line per outage: the same kind of failure on another endpoint (the poll's search,
        # then the version check of each later poll) is the same outage.
        problem = (type(err), err.status)
        if problem == self._problem:
            log.debug("Immich is still not usable (%s)", err)
            return
        self._problem = problem
        if isinstance(err, ImmichAuthError):  # the key, not Immich: say what to change
            log.error("Immich is not usable: %s", key_refused(self._settings(), err))
            return
        log.error("Immich is not usable yet (%s); will try again at the next poll", err)

    async def poll(self) -> bool:
        """One poll of every account; False when it did not happen (the reason in ``error``)."""
        try:
            if not self.connected:
                if not await self.connect():
                    self._metrics.poll_runs.labels(result="failure").inc()
                    return False
            else:
                await self._recheck()
            await self._poll_accounts()
        except ImmichPermissionError as err:
            if not self._session.refused(err):
                log.warning("poll failed: %s", err)
                self.error = f"the last poll failed: {err}"
            return False  # the next poll runs without what the key lacks
        except StateOwnerError as err:  # Immich answered only now, and it is another user's
            self._another_users_state(err)
            return False
        except ImmichError as err:
            self._failed(err)
            return False
        except RuleResolutionError as err:  # Immich answered only now, and a name is wrong
            self._unknown_names(err)
            return False
        except Exception:
            log.exception("poll failed unexpectedly")
            self.error = "the last poll failed unexpectedly (see the log)"
            return False
        self.error = None
        self._unresolved = []
        self.last_success = time.monotonic()
        return True

    async def _recheck(self) -> None:
        """The key's permissions again (while something is off); the member links follow the
        rules if that re-resolved them."""
        before = self._session.rules
        await self._session.recheck(self._settings())
        if self._session.rules is not before and self._session.rules is not None:
            self._lookup.follow(self._session.rules)

    async def _poll_accounts(self) -> None:
        rules = self._session.rules
        assert rules is not None  # resolved on connecting, or by a reload
        settings = self._settings()
        runs = self._session.runs_in
        self._polls.waiting(rules.unresolved)
        await self._polls.poll(
            {
                name: build_watch(settings, own, rules_off(settings, name, runs(name)))
                for name, own in rules.by_account.items()
            },
            self._session.refused_in,
        )

    def off_elsewhere(self, *, safety: bool = True) -> list[str]:
        """What is off in the other accounts, by their own keys (``account mum: ...``)."""
        return [
            f"account {name}: {sentence}"
            for name, access in self._session.account_access.items()
            for sentence in access.off_sentences(safety=safety)
        ]

    async def look_names_up_again(self) -> None:
        """The hourly look-up (under the poll lock): the running config's names again, followed
        when Immich now says otherwise (a rename, a merge, a second person of a name). A name
        that means no one any more keeps the rules as they are, said once."""
        if not self.connected or self._session.rules is None:
            return
        before = self._session.rules
        try:
            await self._session.resolve(self._settings())
        except ImmichError as err:
            log.info("people: could not look the names up again (%s); next hour then", err)
        except RuleResolutionError as err:
            for problem in err.lines():
                self._lookup.say(
                    f"people: {problem}; the rules keep watching whom they watched, but the "
                    "next start refuses the config: correct the name or people_aliases"
                )
        else:
            if self._session.rules is not before and self._session.rules is not None:
                self._lookup.follow(self._session.rules)

    async def check_linked_people(self) -> None:
        """Every linked person asked for in their own account (deleted or merged: said)."""
        if self.connected and self._access.is_on(CLAIMS):
            await self._directory.check_people(self._lookup.people_lookups())

    def _another_users_state(self, err: StateOwnerError) -> None:
        log.error("%s", err)
        self.fatal = err
        self.error = str(err)
        self._stop.set()

    def _failed(self, err: ImmichError) -> None:
        if isinstance(err, ImmichAuthError):  # the key was deleted while running: said once
            self._unusable(err)
            return
        if isinstance(err, ImmichClientError):
            log.warning("poll failed: %s", err)
        else:  # down or restarting (maybe another version comes back): said once
            self.connected = False
            outage = (type(err), err.status)
            if outage != self._problem:
                self._problem = outage
                log.warning("poll failed: %s", err)
        self.error = f"the last poll failed: {err}"

    def _unknown_names(self, err: RuleResolutionError) -> None:
        if err.lines() != self._unresolved:  # said once, not at every poll
            self._unresolved = err.lines()
            for problem in err.lines():
                log.error("cannot watch: %s", problem)
        self.error = "a rule names a person Immich does not know (see the log)"
        self._metrics.poll_runs.labels(result="failure").inc()


def key_refused(settings: Settings, err: ImmichError) -> str:
    """What a 401 means and what to change: the key where the config gives it, made anew in
    Immich; in the config or its key file it applies at the next reload, from an environment
    variable at a restart (the sidecar keeps trying meanwhile: a key restored in Immich works
    again without either)."""
    accounts = settings.immich.accounts
    base: KeyPath = ("immich", "accounts", accounts[0].name) if len(accounts) > 1 else ("immich",)
    key = next(
        (k for k in ("api_key", "api_key_file") if (*base, k) in settings.lines),
        "api_key",
    )
    path = (*base, key)
    line = settings.lines.get(path)
    where = f"{settings.source}:{line}" if line is not None else str(settings.source)
    given = "the file it names holds" if key == "api_key_file" else "it holds"
    return (
        f"Immich refused the API key ({err}). Check {format_key_path(path)} ({where}): "
        f"{given} a key that is wrong, expired or deleted in Immich. Create a key in "
        f"{KEY_SETTINGS_HINT} and put it there: it applies at the next reload, no restart (a key "
        "from an environment variable needs a restart of the sidecar); until then it tries "
        "again at every poll"
    )


class PollJob:
    """When a poll runs: every ``poll.interval`` and once soon after a push, never two at once.
    Each run checks the config file first, polls under ``lock``, then wakes the dispatcher."""

    def __init__(
        self,
        poll: ImmichPoll,
        reloader: ConfigReloader,
        lock: asyncio.Lock,
        stop: asyncio.Event,
        wake: Callable[[], None],
    ) -> None:
        self._poll = poll
        self._reloader = reloader
        self._lock = lock
        self._stop = stop
        self._wake = wake
        self._scheduler: AsyncIOScheduler | None = None

    def schedule(self, scheduler: AsyncIOScheduler, interval: float) -> None:
        """The interval job, its first run now, and the hourly people check."""
        self._scheduler = scheduler
        scheduler.add_job(
            self.run,
            "interval",
            seconds=interval,
            id=POLL_JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),
        )
        scheduler.add_job(
            self.people_check, "interval", hours=PEOPLE_CHECK_HOURS, id=PEOPLE_JOB_ID, coalesce=True
        )

    async def people_check(self) -> None:
        """Names looked up again under the poll lock, as a reload is; then linked people."""
        if self._stop.is_set():
            return
        async with self._lock:
            await self._poll.look_names_up_again()
        await self._poll.check_linked_people()

    def reschedule(self, interval: float) -> None:
        if self._scheduler is not None:
            self._scheduler.reschedule_job(POLL_JOB_ID, trigger="interval", seconds=interval)

    def soon(self, delay: float) -> None:
        """One extra poll in ``delay`` seconds (a push said an upload is coming), unless one is
        already planned."""
        if self._scheduler is None or self._scheduler.get_job(PUSH_POLL_JOB_ID) is not None:
            return
        when = utc_now() + timedelta(seconds=delay)
        self._scheduler.add_job(self.run, "date", run_date=when, id=PUSH_POLL_JOB_ID)

    async def run(self) -> None:
        if self._stop.is_set():
            return
        try:
            await self._reloader.check()  # an edit the watcher missed, or one waiting for Immich
            async with self._lock:
                if self._stop.is_set():
                    return
                polled = await self._poll.poll()
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            # The scheduler cancels a poll in flight at stop (one retrying a failing Immich may
            # take a minute); the next start polls again.
            log.info("poll interrupted: stopping")
            return
        if polled:
            self._wake()
