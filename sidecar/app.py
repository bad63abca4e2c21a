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
from sidecar.config.model import ConfigError, Secret, Settings
from sidecar.discord.bot import DiscordStartupError, SidecarBot
from sidecar.discord.no_echo import without_echo
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import AccountPolls, Accounts
from sidecar.engine.albums.watcher import AlbumWatcher
from sidecar.engine.dispatch.dispatcher import Dispatcher
from sidecar.engine.dispatch.quiet import quiet_policy
from sidecar.engine.lookup import ConfigLookup
from sidecar.engine.members import MemberDirectory
from sidecar.engine.planning import rule_options
from sidecar.engine.poll import ImmichPoll, PollJob
from sidecar.engine.posts.plan import Plan
from sidecar.engine.posts.planner import memories_today
from sidecar.engine.posts.scheduler import PostScheduler
from sidecar.engine.reload import ConfigReloader, drop_removed_targets, warn_restart_only
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.session import ImmichSession
from sidecar.engine.status import SidecarStatus, StatusInfo
from sidecar.engine.store.database import Store
from sidecar.engine.store.owner import move_aside
from sidecar.immich.client import ImmichClient
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.http_server import MetricsServer
from sidecar.ops.logging import SchedulerLog
from sidecar.ops.metrics import Metrics
from sidecar.push.runtime import PushRuntime
from sidecar.targets.base import Sink, SinkContext
from sidecar.targets.sinks import SinkSet
from sidecar.ui.runtime import StatusPage
from sidecar.wording import count

log = logging.getLogger(__name__)


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
                self.accounts.link_maker(self.store, self.access, self._clock),
            )
        )
        self._started = time.monotonic()
        self._reloader: ConfigReloader
        self.settings: Settings
        self.loaded_at: datetime
        self.store: Store
        self.directory: MemberDirectory
        self.accounts: Accounts
        self.client: ImmichClient  # the first account's (uploads' by default)
        self.polls: AccountPolls
        self.lookup: ConfigLookup
        self.session: ImmichSession
        self.albums: AlbumWatcher
        self.dispatcher: Dispatcher
        self.poll: ImmichPoll
        self.poll_job: PollJob
        self._status: SidecarStatus
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
        self._load_config()
        self._open_state()
        await self._open_immich()
        self._plan_polls()
        if self.settings.discord.token is not None:
            await self._start_bot(self.settings.discord.token)
        await self.poll.connect()
        self.dispatcher.configure(
            self._build_sinks(self.settings),
            rule_options(self.settings),
            quiet_policy(self.settings),
        )
        await self._serve()
        self._start_scheduler()
        self._tasks = [asyncio.create_task(self.dispatcher.run(self._stop), name="dispatcher")]
        self._watcher = asyncio.create_task(self._reloader.watch(self._stop), name="config-watcher")
        log.info(
            "sidecar %s started: %s, %s, polling every %gs",
            __version__,
            count(len(self.settings.rules), "rule"),
            count(len(self.settings.targets), "target"),
            self.settings.poll.interval,
        )

    def _load_config(self) -> None:
        self.settings = load_settings(self.config_path)
        self.loaded_at = self._clock()
        self._reloader = ConfigReloader(
            self.config_path,
            self.settings,
            self._resolve_for_reload,
            self._apply_reload,
            self.metrics,
        )

    def _open_state(self) -> None:
        """The state file (a fresh one with ``--reset-state``) and the member links in it."""
        path = self.settings.state.path
        if self._reset_state and (aside := move_aside(path)) is not None:
            log.warning("--reset-state: moved the old state file aside to %s", aside)
        self.store = Store.open(path)
        self._resources.callback(self.store.close)
        self.directory = MemberDirectory(self.store, self._clock)

    async def _open_immich(self) -> None:
        """One client per account, and what reads through them: the session, the album
        watcher, each account's poll, the dispatcher into the one outbox."""
        settings = self.settings
        self.accounts = await Accounts.open(settings, self.metrics, self._resources)
        self.client = self.accounts.first.client
        self.lookup = ConfigLookup(self.accounts, self.access, self.directory)
        more = [(a.name, a.client) for a in self.accounts][1:]  # their users' cursors too
        self.session = ImmichSession(self.client, self.store, self.access, self.lookup.resolve)
        self.session.add_accounts(more, self.metrics)
        self.lookup.without_people = self.session.without_people
        self.albums = AlbumWatcher(self.accounts.albums(), self.store, self.metrics)
        self.polls = AccountPolls(self.accounts, self.store, self.metrics, self._clock, self.albums)
        self.dispatcher = Dispatcher(self.store, self.metrics, self._clock)
        self.polls.start(
            (r.name for r in settings.rules), timedelta(seconds=settings.poll.backfill)
        )

    def _plan_polls(self) -> None:
        """The poll (connect, poll, why the last one failed), when it runs, and the report on
        both. The bot, if any, starts before the first connect."""
        self.poll = ImmichPoll(
            lambda: self.settings,
            self.session,
            self.accounts,
            self.polls,
            self.lookup,
            self.directory,
            self.metrics,
            self._stop,
            bot=self.settings.discord.token is not None,
        )
        self.poll_job = PollJob(
            self.poll,
            self._reloader,
            self._poll_lock,
            self._stop,
            self.dispatcher.wake,
        )
        self._status = SidecarStatus(
            self.poll,
            self._reloader,
            self.access,
            self.polls,
            self.store,
            self.albums,
            lambda: self.settings,
            lambda: self.loaded_at,
            self._started,
            lambda: self.push.pushed if hasattr(self, "push") else (),  # push starts later
        )

    async def _serve(self) -> None:
        """The metrics and health endpoint, then push (its endpoint and the fast polls)."""
        settings = self.settings
        self._http = MetricsServer(
            self.metrics, self.readiness, settings.metrics.host, settings.metrics.port
        )
        await self._http.start()
        self.push = PushRuntime(
            self.accounts,  # a pushed asset is read with its uploader's key
            self.polls,
            self.store,
            self.metrics,
            self._clock,
            lambda: self.settings,
            lambda: self.session.rules,
            self._poll_lock,
            self.dispatcher.wake,
            self.poll_job.soon,
        )
        self._resources.push_async_callback(self.push.stop)
        await self.push.start(self._stop)
        if settings.ui is not None:  # the status page (read only)
            self.ui = await StatusPage.open(settings.ui, self, self._resources)

    def _start_scheduler(self) -> None:
        """The poll job, the hourly look-up of names and linked people, the scheduled posts."""
        settings = self.settings
        self._scheduler = AsyncIOScheduler(timezone="UTC", logger=SchedulerLog())
        self.poll_job.schedule(self._scheduler, settings.poll.interval)
        self._scheduler.start()
        self.posts = PostScheduler(
            self._scheduler,
            self.client,
            self.store,
            self.metrics,
            self._clock,
            self.dispatcher.wake,
            self.access,
            lambda post: self.accounts.post_source(post.accounts, self.settings.people_aliases),
        )
        self.posts.apply(settings)
        if settings.posts:  # a run missed while the sidecar was down, made up once
            self._scheduler.add_job(
                self.posts.catch_up, "date", run_date=utc_now(), id="posts-catch-up"
            )

    def _build_sinks(self, settings: Settings) -> Mapping[str, Sink]:
        # An asset that came in through an ingest channel is not announced back there.
        return without_echo(self._sinks.build(settings), settings, self.store.ingested_from)

    async def _resolve_for_reload(self, new: Settings) -> AccountRules:
        with self.accounts.keys_of(new, self.settings) as rotated:  # looked up with it
            self.session.rekeyed(rotated)
            bot = self._bot is not None
            return await self.session.resolve_for_reload(self.settings, new, bot=bot)

    async def _start_bot(self, token: Secret) -> None:
        """Log the bot in; raises DiscordStartupError when it cannot (bad token, no Discord).
        Problems with the channel targets are logged now, not at the first photo."""
        self._bot = await self._resources.enter_async_context(
            SidecarBot(
                self.settings,
                self.accounts.get(self.settings.discord.upload.account).client,
                self.metrics,
                self._status.provide,
                memories_provider=self._memories_today,
                directory=self.directory,
                ingest_store=self.store,
                accounts={account.name: account.client for account in self.accounts},
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
            # yet would end in a traceback, so let it take it (it returns at once, see PollJob).
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

    # -- what it says about itself ---------------------------------------------------------------

    def readiness(self) -> list[str]:
        """Why the sidecar is not ready (empty when it is); see ``SidecarStatus.readiness``."""
        return self._status.readiness()

    def status(self) -> StatusInfo:
        return self._status.snapshot()

    async def _memories_today(self) -> Plan:
        source = self.accounts.post_source()
        return await memories_today(source, self.store, self.settings, self._clock())

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
        self.lookup.follow(rules)
        drop_removed_targets(self.store, old, new, self._clock())
        self.dispatcher.configure(self._build_sinks(new), rule_options(new), quiet_policy(new))
        self.posts.apply(new)
        if old.poll.interval != new.poll.interval:
            self.poll_job.reschedule(new.poll.interval)


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
    if sidecar.poll.fatal is not None:  # another user's state file, found once Immich answered
        print(sidecar.poll.fatal, file=sys.stderr)
        return 2
    return 0
