"""Lifecycle: build the components from the settings, run them, reload the config, stop.

A reload (``sidecar.engine.reload``) swaps the settings and their resolved rules under the poll
lock, and each poll builds its ``Watch`` from them once: a poll sees one config from start to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from sidecar import __version__
from sidecar.clock import utc_now
from sidecar.config.loader import load_settings
from sidecar.config.model import (
    ConfigError,
    Rule,
    Secret,
    Settings,
)
from sidecar.discord.bot import DiscordStartupError, SidecarBot
from sidecar.discord.commands import StatusInfo
from sidecar.discord.no_echo import without_echo
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import AccountPolls, Accounts
from sidecar.engine.albums.watcher import (
    AlbumWatcher,
)
from sidecar.engine.dispatch.dispatcher import Dispatcher
from sidecar.engine.dispatch.quiet import quiet_policy
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.planning import (
    build_watch,
    resolve_account_rules,
    resolve_member_links,
    rule_options,
)
from sidecar.engine.posts.plan import Plan
from sidecar.engine.posts.planner import memories_today
from sidecar.engine.posts.scheduler import PostScheduler
from sidecar.engine.reload import ConfigReloader, drop_removed_targets, warn_restart_only
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import (
    RuleResolutionError,
)
from sidecar.engine.session import ImmichSession
from sidecar.engine.store.database import Store
from sidecar.engine.store.owner import StateOwnerError, move_aside
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichClientError, ImmichError, ImmichPermissionError
from sidecar.immich.permissions import CLAIMS
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.http_server import MetricsServer
from sidecar.ops.logging import SchedulerLog
from sidecar.ops.metrics import Metrics
from sidecar.push.runtime import PushRuntime
from sidecar.targets.base import Sink, SinkContext
from sidecar.targets.sinks import SinkSet
from sidecar.wording import count

log = logging.getLogger(__name__)

POLL_JOB_ID = "poll"
PUSH_POLL_JOB_ID = "poll-after-push"


class Sidecar:
    """One running sidecar. ``start()`` raises ConfigError or RuleResolutionError when the
    config cannot run at all; everything after start keeps running through errors."""

    def __init__(
        self,
        config_path: Path,
        *,
        stdout: TextIO | None = None,
        clock: Callable[[], datetime] = utc_now,
        metrics: Metrics | None = None,
        reset_state: bool = False,
    ) -> None:
        self.config_path = config_path
        self.metrics = metrics or Metrics()
        self.access = FeatureAccess(self.metrics)
        self.fatal: StateOwnerError | None = None  # why the sidecar stopped by itself
        self._reset_state = reset_state
        self._stdout = stdout
        self._clock = clock
        self._stop = asyncio.Event()
        self._poll_lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._watcher: asyncio.Task[None] | None = None
        self._scheduler: AsyncIOScheduler | None = None
        self._http: MetricsServer | None = None
        self._bot: SidecarBot | None = None
        self._resources = contextlib.AsyncExitStack()
        self._sinks = SinkSet(
            lambda settings: SinkContext(
                settings.immich.external_url,
                self.accounts,
                self.metrics,
                self._stdout,
                self._bot,
                self.directory,
                settings.discord.members.favourite_roles,
            )
        )
        self._resolved_links: list[Link] = []  # discord.members of the config being applied
        # Connected: the version and the key's permissions were checked against the Immich
        # that answers now. A reload never makes it so, an Immich outage undoes it.
        self._connected = False
        self._immich_problem: tuple[object, ...] | None = None  # the last one logged
        self._poll_error: str | None = None  # why the last poll attempt failed
        self._unresolved: list[str] = []  # the names problems last logged
        self._version: str | None = None
        self._started = time.monotonic()
        self._last_success: float | None = None
        self._reloader: ConfigReloader
        self.settings: Settings
        self.loaded_at: datetime
        self.store: Store
        self.directory: MemberDirectory
        self.accounts: Accounts
        self.client: ImmichClient  # the first account's (uploads' by default)
        self.polls: AccountPolls
        self.session: ImmichSession
        self.albums: AlbumWatcher
        self.dispatcher: Dispatcher
        self.posts: PostScheduler
        self.push: PushRuntime

    # -- start and stop ------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self._resources.aclose()  # whatever a failed start opened
            raise

    async def _start(self) -> None:
        self.metrics.build_info.labels(version=__version__).set(1)
        self.settings = load_settings(self.config_path)
        self.loaded_at = self._clock()
        self._reloader = ConfigReloader(
            self.config_path,
            self.settings,
            self._resolve_for_reload,
            self._apply_reload,
            self.metrics,
        )
        settings = self.settings
        if self._reset_state and (aside := move_aside(settings.state.path)) is not None:
            log.warning("--reset-state: moved the old state file aside to %s", aside)
        self.store = Store.open(settings.state.path)
        self._resources.callback(self.store.close)
        self.directory = MemberDirectory(self.store, self._clock)
        self.accounts = await Accounts.open(settings, self.metrics, self._resources)
        self.client = self.accounts.first.client
        self.session = ImmichSession(self.client, self.store, self.access, self._resolve)
        self.albums = AlbumWatcher(self.accounts.albums(), self.store, self.metrics)
        self.polls = AccountPolls(self.accounts, self.store, self.metrics, self._clock, self.albums)
        self.dispatcher = Dispatcher(self.store, self.metrics, self._clock)
        self.polls.start(
            (r.name for r in settings.rules), timedelta(seconds=settings.poll.backfill)
        )
        if settings.discord.token is not None:
            await self._start_bot(settings.discord.token)
        await self._connect_immich()
        self.dispatcher.configure(
            self._build_sinks(settings), rule_options(settings), quiet_policy(settings)
        )

        self._http = MetricsServer(
            self.metrics, self.readiness, settings.metrics.host, settings.metrics.port
        )
        await self._http.start()
        self.push = PushRuntime(
            self.client,
            self.store,
            self.metrics,
            self._clock,
            lambda: self.settings,
            # Push and fast polls run in the first account (a workflow is its owner's).
            lambda: self.session.rules.first if self.session.rules is not None else None,
            self._poll_lock,
            self.dispatcher.wake,
            self._poll_soon,
        )
        self._resources.push_async_callback(self.push.stop)
        await self.push.start(self._stop)
        self._scheduler = AsyncIOScheduler(timezone="UTC", logger=SchedulerLog())
        self._scheduler.add_job(
            self._poll_job,
            "interval",
            seconds=settings.poll.interval,
            id=POLL_JOB_ID,
            max_instances=1,
            coalesce=True,
            next_run_time=utc_now(),
        )
        self._scheduler.add_job(
            self._check_members, "interval", hours=1, id="members-check", coalesce=True
        )
        self._scheduler.start()
        self.posts = PostScheduler(
            self._scheduler,
            self.client,
            self.store,
            self.metrics,
            self._clock,
            self.dispatcher.wake,
            self.access,
            lambda post: self.accounts.post_source(post.accounts),
        )
        self.posts.apply(settings)
        if settings.posts:  # a run missed while the sidecar was down, made up once
            self._scheduler.add_job(
                self.posts.catch_up, "date", run_date=utc_now(), id="posts-catch-up"
            )
        self._tasks = [asyncio.create_task(self.dispatcher.run(self._stop), name="dispatcher")]
        self._watcher = asyncio.create_task(self._reloader.watch(self._stop), name="config-watcher")
        log.info(
            "sidecar %s started: %s, %s, polling every %gs",
            __version__,
            count(len(settings.rules), "rule"),
            count(len(settings.targets), "target"),
            settings.poll.interval,
        )

    def _build_sinks(self, settings: Settings) -> Mapping[str, Sink]:
        # An asset that came in through an ingest channel is not announced back there.
        return without_echo(self._sinks.build(settings), settings, self.store.ingested_from)

    async def _connect_immich(self) -> bool:
        """Learn the server version, then what the key allows, whose state file this is and
        the rules' names (``ImmichSession.connect``). Immich being down is not fatal (the poll
        job tries again); an unknown person name is (RuleResolutionError), and so is another
        user's state file (StateOwnerError)."""
        try:
            version = await self.client.version()
            self._version = str(version)
            first = self.session.rules is None
            await self.session.connect(self.settings, bot=self._bot is not None)
            if first:
                assert self.session.rules is not None
                self.directory.configure(self._resolved_links, self.session.rules.first)
                if len(self.accounts) > 1:
                    for line in self.session.rules.where_found():
                        log.info("people: %s", line)
                if self.access.is_on(CLAIMS):
                    await self.directory.check_people(self.client)
        except ImmichPermissionError as err:
            if not self.session.refused(err):
                self._immich_unusable(err)
                return False
            return await self._connect_immich()  # again, without what the key lacks
        except ImmichError as err:
            self._immich_unusable(err)
            return False
        self._connected = True
        again = " again" if self._immich_problem is not None else ""
        self._immich_problem = None
        log.info("connected to Immich %s%s", self._version, again)
        return True

    async def _resolve_for_reload(self, new: Settings) -> AccountRules:
        return await self.session.resolve_for_reload(self.settings, new, bot=self._bot is not None)

    def _immich_unusable(self, err: ImmichError) -> None:
        self._connected = False
        self._poll_error = f"Immich is not usable: {err}"
        # One line per outage: the same kind of failure on another endpoint (the poll's search,
        # then the version check of each later poll) is the same outage.
        problem = (type(err), err.status)
        if problem == self._immich_problem:
            log.debug("Immich is still not usable (%s)", err)
            return
        self._immich_problem = problem
        log.error("Immich is not usable yet (%s); will try again at the next poll", err)

    async def _start_bot(self, token: Secret) -> None:
        """Log the bot in; raises DiscordStartupError when it cannot (bad token, no Discord).
        Problems with the channel targets are logged now, not at the first photo."""
        self._bot = await self._resources.enter_async_context(
            SidecarBot(
                self.settings,
                self.accounts.get(self.settings.discord.upload.account).client,
                self.metrics,
                self._status_async,
                memories_provider=self._memories_today,
                directory=self.directory,
                ingest_store=self.store,
            )
        )
        problems = await self._bot.launch(token)
        for problem in problems:
            log.error("discord: %s", problem)

    async def run_until_stopped(self) -> None:
        await self._stop.wait()

    def request_stop(self) -> None:
        self._stop.set()

    async def stop(self) -> None:
        """Finish the delivery in flight, stop everything, close the store."""
        self._stop.set()
        if self._scheduler is not None:
            # Shutting down cancels the polls it started; one that has not taken its first step
            # yet would end in a traceback, so let it take it (it returns at once, see _poll_job).
            self._scheduler.pause()
            await asyncio.sleep(0)
            self._scheduler.shutdown(wait=False)
            await self.posts.close()
        if self._watcher is not None:
            self._watcher.cancel()  # a reload waiting for Immich would hold the stop up
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._poll_lock:  # a poll in flight writes to the store
            pass
        await self._sinks.close()
        if self._http is not None:
            await self._http.stop()
        await self._resources.aclose()  # the bot, the Immich client, the store
        log.info("sidecar stopped")

    # -- the poll ------------------------------------------------------------------------------

    def _poll_soon(self, delay: float) -> None:
        """One extra poll in ``delay`` seconds (a push said an upload is coming), unless one is
        already planned."""
        if self._scheduler is None or self._scheduler.get_job(PUSH_POLL_JOB_ID) is not None:
            return
        when = utc_now() + timedelta(seconds=delay)
        self._scheduler.add_job(self._poll_job, "date", run_date=when, id=PUSH_POLL_JOB_ID)

    async def _poll_job(self) -> None:
        if self._stop.is_set():
            return
        try:
            await self._reloader.check()  # an edit the watcher missed, or one waiting for Immich
            async with self._poll_lock:
                if self._stop.is_set():
                    return
                started = self._clock()
                polled = await self._poll()
            if polled:
                await self.push.after_poll(started)  # new uploads: fast polls for their faces
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            # The scheduler cancels a poll in flight at stop (one retrying a failing Immich may
            # take a minute); the next start polls again.
            log.info("poll interrupted: stopping")
            return
        if polled:
            self.dispatcher.wake()

    async def _poll(self) -> bool:
        try:
            if not self._connected:
                if not await self._connect_immich():
                    self.metrics.poll_runs.labels(result="failure").inc()
                    return False
            else:
                before = self.session.rules
                await self.session.recheck(self.settings)
                if self.session.rules is not before and self.session.rules is not None:
                    self.directory.configure(self._resolved_links, self.session.rules.first)
            assert self.session.rules is not None  # resolved on connecting, or by a reload
            await self.polls.poll(
                {
                    name: build_watch(self.settings, rules)
                    for name, rules in self.session.rules.by_account.items()
                }
            )
        except ImmichPermissionError as err:
            if not self.session.refused(err):
                log.warning("poll failed: %s", err)
                self._poll_error = f"the last poll failed: {err}"
            return False  # the next poll runs without what the key lacks
        except StateOwnerError as err:  # Immich answered only now, and it is another user's
            log.error("%s", err)
            self.fatal = err
            self._poll_error = str(err)
            self.request_stop()
            return False
        except ImmichError as err:
            if isinstance(err, ImmichClientError):
                log.warning("poll failed: %s", err)
            else:  # down or restarting (maybe another version comes back): said once
                self._connected = False
                outage = (type(err), err.status)
                if outage != self._immich_problem:
                    self._immich_problem = outage
                    log.warning("poll failed: %s", err)
            self._poll_error = f"the last poll failed: {err}"
            return False
        except RuleResolutionError as err:  # Immich answered only now, and a name is wrong
            if err.lines() != self._unresolved:  # said once, not at every poll
                self._unresolved = err.lines()
                for problem in err.lines():
                    log.error("cannot watch: %s", problem)
            self._poll_error = "a rule names a person Immich does not know (see the log)"
            self.metrics.poll_runs.labels(result="failure").inc()
            return False
        except Exception:
            log.exception("poll failed unexpectedly")
            self._poll_error = "the last poll failed unexpectedly (see the log)"
            return False
        self._poll_error = None
        self._unresolved = []
        self._last_success = time.monotonic()
        return True

    def readiness(self) -> list[str]:
        """Why the sidecar is not ready (empty when it is): Immich did not answer at the last
        attempt, the last poll failed or is older than three intervals, or the config file holds
        a change that does not run (rejected, or waiting for Immich)."""
        reasons = []
        if self._poll_error is not None:
            reasons.append(self._poll_error)
        elif not self._connected:
            reasons.append("not connected to Immich yet")
        limit = 3 * self.settings.poll.interval
        since = self._last_success
        if since is None and time.monotonic() - self._started > limit:
            reasons.append(f"no successful poll since start ({limit:g}s ago or more)")
        if since is not None and time.monotonic() - since > limit:
            reasons.append(f"last successful poll more than {limit:g}s ago")
        if problem := self._reloader.problem():
            reasons.append(problem)
        return reasons + self.access.off_sentences(safety=False) + self.polls.problems()

    async def _resolve(self, settings: Settings, runs: Callable[[Rule], bool]) -> AccountRules:
        """Look the people of a config up in Immich: the rules' that can run, and its member
        links' while the key allows them (``person.read``)."""
        rules = await resolve_account_rules(self.accounts, settings, runs)
        links_on = self.access.is_on(CLAIMS)
        self._resolved_links = await resolve_member_links(self.client, settings) if links_on else []
        return rules

    async def _check_members(self) -> None:
        """A linked person deleted or merged in Immich is reported, not silently kept."""
        if self._connected and self.access.is_on(CLAIMS):
            await self.directory.check_people(self.client)

    async def _memories_today(self) -> Plan:
        source = self.accounts.post_source()
        return await memories_today(source, self.store, self.settings, self._clock())

    async def _status_async(self) -> StatusInfo:
        return self.status()

    def status(self) -> StatusInfo:
        counts = self.store.counts()
        last = self.polls.last_success()
        return StatusInfo(
            immich_reachable=self._connected and self._poll_error is None,
            immich_version=self._version,
            last_successful_poll=last,
            outbox_pending=counts.pending,
            outbox_failed=counts.failed,
            config_loaded_at=self.loaded_at,
            albums=tuple(self.albums.watched_albums()),
            features_off=tuple(self.access.off_sentences()),
            failing_accounts=tuple(self.polls.problems()),
        )

    # -- reload --------------------------------------------------------------------------------

    async def reload(self) -> bool:
        """Compare the config file with the running config and reload it if it differs; swap
        it in if valid, else keep the running one. Returns True when a new config took effect."""
        return await self._reloader.check()

    async def _apply_reload(self, new: Settings, rules: AccountRules) -> None:
        async with self._poll_lock:
            self._apply(new, rules)

    def _apply(self, new: Settings, rules: AccountRules) -> None:
        old = self.settings
        warn_restart_only(old, new)
        if self._bot is not None:
            self._bot.update_settings(new)
        self.settings = new
        self.loaded_at = self._clock()
        self.session.rules = rules
        self.directory.configure(self._resolved_links, rules.first)
        drop_removed_targets(self.store, old, new, self._clock())
        self.dispatcher.configure(self._build_sinks(new), rule_options(new), quiet_policy(new))
        self.posts.apply(new)
        if old.poll.interval != new.poll.interval and self._scheduler is not None:
            self._scheduler.reschedule_job(
                POLL_JOB_ID, trigger="interval", seconds=new.poll.interval
            )


def run_forever(config_path: Path, *, reset_state: bool = False) -> int:
    """``immich-sidecar run``: run until SIGTERM or SIGINT, then stop cleanly (exit 0)."""
    quiet_library_retry_hooks()
    return asyncio.run(_run(config_path, reset_state))


async def _run(config_path: Path, reset_state: bool = False) -> int:
    sidecar = Sidecar(config_path, reset_state=reset_state)
    try:
        await sidecar.start()
    except (ConfigError, RuleResolutionError) as err:
        for problem in err.lines():
            print(problem, file=sys.stderr)
        return 2
    except DiscordStartupError as err:
        print(f"discord: {err}", file=sys.stderr)
        return 1 if err.passing else 2  # 2: fix the config; 1: try again later
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, sidecar.request_stop)
    await sidecar.run_until_stopped()
    await sidecar.stop()
    if sidecar.fatal is not None:  # another user's state file, found once Immich answered
        print(sidecar.fatal, file=sys.stderr)
        return 2
    return 0
