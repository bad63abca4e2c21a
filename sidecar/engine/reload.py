"""Hot reload: keep the running config in step with the config file.

The file is compared with the running config (by the hash of its bytes) once the watcher is in
place, whenever the watcher reports a change, and before every poll, so an edit is never lost:
not one made before the watcher was armed, nor one whose change event came while a reload
could not finish.

- A file that is invalid, or wrong in a way only the file can fix (a person name two people in
  Immich share), is *rejected*: logged once, the running config stays, and it is not tried
  again until the file changes.
- A valid file whose names cannot be looked up because Immich did not answer is *pending*:
  tried again at every check (so before every poll) until it applies or the file changes.
- A valid file refused only because Immich lacks a person, album or account it names
  (``RuleResolutionError.waiting_on``, the problems marked ``NotInImmich``) is pending too,
  *waiting* for those names: said once ("waiting for Carol in Immich; fix it in Immich or in
  the file"), tried again at every check, and applied as soon as Immich has them, with no
  change to the file. A check whose answer names other missing names says so again.
- A file whose bytes are the running config's again (a rejected edit undone) ends the failure:
  ``config_last_reload_successful`` is 1 again and ``config_reloads_total{result="unchanged"}``
  counts it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from watchfiles import Change, awatch

from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import NotInImmich, RuleResolutionError
from sidecar.engine.store.database import Store
from sidecar.immich.errors import ImmichError
from sidecar.ops.metrics import Metrics
from sidecar.wording import count

log = logging.getLogger(__name__)

RELOAD_DEBOUNCE_MS = 100  # watchfiles' default (1.6 s) would miss the one-second reload promise
UNREADABLE = "unreadable"  # stands for the hash of a file that cannot be read

Rules = AccountRules
Resolve = Callable[[Settings], Awaitable[Rules]]
Apply = Callable[[Settings, Rules], Awaitable[None]]


def file_hash(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def config_change_filter(file_name: str) -> Callable[[Change, str], bool]:
    """Changes that may have replaced the config: the file itself, or Kubernetes' ``..data``
    symlink and timestamped folders. Other files (a state database or a log beside it) are
    ignored."""

    def relevant(_change: Change, path: str) -> bool:
        name = Path(path).name
        return name == file_name or name.startswith("..")

    return relevant


class ConfigReloader:
    """Owns the running config's hash, the pending config and the watch of the config folder.

    ``resolve`` looks the people of a config up in Immich (ImmichError: try again later,
    RuleResolutionError: the file is wrong); ``apply`` makes a resolved config the running one.
    """

    def __init__(
        self, path: Path, running: Settings, resolve: Resolve, apply: Apply, metrics: Metrics
    ) -> None:
        self._path = path
        self._resolve = resolve
        self._apply = apply
        self._metrics = metrics
        self._lock = asyncio.Lock()  # the watcher and the poll job both check
        self._running_hash = running.content_hash
        self._pending: Settings | None = None  # valid, waiting for Immich to look people up
        self._waiting: tuple[NotInImmich, ...] = ()  # what Immich lacks for the pending one
        self._rejected: str | None = None  # hash of the file that was rejected
        self._failed = False  # config_last_reload_successful is 0
        # Why the file on disk is not the running config (file:line: key: problem lines)
        self.last_error: tuple[str, ...] = ()
        self._mark(success=True, result=None)

    def problem(self) -> str | None:
        """Why the file is not the running config (None when it is), for /readyz."""
        if self._rejected is not None:
            return "the config file was rejected (see the log); the previous config still runs"
        if self._pending is not None and self._waiting:
            return (
                f"a config change waits for {waiting_for(self._waiting)} in Immich; the "
                "previous config still runs"
            )
        if self._pending is not None:
            return "a config change waits for Immich to look its people up"
        return None

    async def watch(self, stop: asyncio.Event) -> None:
        """Check at every change of the config folder until ``stop``."""
        # The folder, not the file: Kubernetes swaps a ConfigMap by renaming a symlink, and
        # editors save by writing a new file and renaming it over the old one.
        changes = aiter(
            awatch(
                self._path.absolute().parent,
                stop_event=stop,
                debounce=RELOAD_DEBOUNCE_MS,
                step=20,
                recursive=False,
                watch_filter=config_change_filter(self._path.name),
            )
        )
        # awatch starts watching in its first step; from then on no change goes unreported, so
        # one comparison after that step catches an edit made before it.
        change = asyncio.ensure_future(anext(changes))
        try:
            await asyncio.sleep(0)
            await self.check()
            while True:
                try:
                    await change
                except StopAsyncIteration:
                    return
                await self.check()
                change = asyncio.ensure_future(anext(changes))
        finally:
            change.cancel()  # when cancelled during a check

    async def check(self) -> bool:
        """Compare the file with the running config and reload it if it differs.
        Returns True when a new config took effect meanwhile, by this check or by one it
        waited for (the watcher and a poll may both notice the same edit)."""
        before = self._running_hash
        async with self._lock:
            try:
                await self._check()
            except Exception:  # a bug here must not stop the watcher or the poll
                log.exception("config reload failed unexpectedly")
        return self._running_hash != before

    async def _check(self) -> bool:
        digest = file_hash(self._path) or UNREADABLE
        if digest == self._running_hash:
            self._pending = self._rejected = None
            self._waiting = ()
            self.last_error = ()
            if self._failed:
                log.info("the config file matches the running config again")
                self._mark(success=True, result="unchanged")
            return False
        if digest == self._rejected:
            return False
        pending = self._pending
        try:
            new = (
                pending
                if pending is not None and pending.content_hash == digest
                else (load_settings(self._path))
            )
            rules = await self._resolve(new)
        except RuleResolutionError as err:
            if err.waiting_on:
                self._wait_for(new, err.waiting_on)
            else:
                self._reject(digest, err.lines())
            return False
        except ConfigError as err:
            self._reject(digest, err.lines())
            return False
        except ImmichError as err:
            if pending is not None and pending.content_hash == new.content_hash:
                log.debug("config reload still postponed: %s", err)
                return False
            log.error(
                "config reload postponed: cannot look people up in Immich (%s); "
                "trying again before every poll",
                err,
            )
            self._pending, self._rejected, self._waiting = new, None, ()
            self.last_error = (f"postponed: cannot look people up in Immich ({err})",)
            self._mark(success=False)
            return False
        await self._apply(new, rules)
        if self._waiting and new is pending:
            log.info("%s in Immich now: the config change applies", waiting_for(self._waiting))
        self._running_hash = new.content_hash
        self._pending = self._rejected = None
        self._waiting = ()
        self.last_error = ()
        self._mark(success=True)
        log.info(
            "config reloaded: %s, %s",
            count(len(new.rules), "rule"),
            count(len(new.targets), "target"),
        )
        return True

    def _reject(self, digest: str, problems: list[str]) -> None:
        for problem in problems:
            log.error("config reload rejected, keeping the running config: %s", problem)
        self._pending, self._rejected, self._waiting = None, digest, ()
        self.last_error = tuple(problems)
        self._mark(success=False)

    def _wait_for(self, new: Settings, missing: tuple[NotInImmich, ...]) -> None:
        """Keep ``new`` pending until Immich has what it names; said once for each file and
        set of missing names."""
        same_file = self._pending is not None and self._pending.content_hash == new.content_hash
        before = {(m.kind, m.name) for m in self._waiting} if same_file else set()
        self._pending, self._rejected, self._waiting = new, None, missing
        self.last_error = tuple(f"waiting for Immich: {problem}" for problem in missing)
        if before == {(m.kind, m.name) for m in missing}:
            log.debug("config reload still waits for %s in Immich", waiting_for(missing))
            return
        if not same_file:
            for problem in missing:
                log.error("config reload waits, keeping the running config: %s", problem)
            self._mark(success=False)
        log.warning(
            "waiting for %s in Immich; fix it in Immich or in the file (tried again before "
            "every poll)",
            waiting_for(missing),
        )

    def _mark(self, *, success: bool, result: str | None = "") -> None:
        self._failed = not success
        self._metrics.config_last_reload_successful.set(1 if success else 0)
        if success:
            self._metrics.config_last_reload_success_timestamp.set(time.time())
        if result is not None:
            self._metrics.config_reloads.labels(
                result=result or ("success" if success else "failure")
            ).inc()


def waiting_for(missing: tuple[NotInImmich, ...]) -> str:
    """``Carol``, ``Carol and the album Summer``: what a waiting reload needs from Immich."""
    names = list(
        dict.fromkeys(m.name if m.kind == "person" else f"the {m.kind} {m.name}" for m in missing)
    )
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def warn_restart_only(old: Settings, new: Settings) -> None:
    """Say which changes a reload cannot apply: they wait for the next start."""
    for setting in ("state", "metrics", "push", "ui"):
        if getattr(old, setting) != getattr(new, setting):
            log.warning("config: %s changed; it takes effect at the next restart", setting)
    if old.immich != new.immich or old.discord.token != new.discord.token:
        log.warning(
            "config: the Immich connection or the Discord token changed; "
            "that takes effect at the next restart"
        )


def drop_removed_targets(store: Store, old: Settings, new: Settings, now: datetime) -> None:
    """Queued deliveries to targets the new config removed become dead letters."""
    removed = set(old.targets) - set(new.targets)
    if not removed:
        return
    dropped = store.fail_pending_for_targets(removed, "target removed from the config", now)
    if dropped:
        log.warning(
            "config: %s dropped, their targets were removed (%s)",
            count(dropped, "queued delivery", "queued deliveries"),
            ", ".join(sorted(removed)),
        )
