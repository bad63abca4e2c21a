"""What the running sidecar knows of the Immich it talks to: which features the API key allows
(``engine.access``), whose state file it is (``engine.state_owner``), and the rules resolved
for the features that are on. Kept in step: a rule's feature turning on or off resolves the
rules again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from sidecar.config.model import Rule, Settings
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.planning import resolve_rules
from sidecar.engine.rules.accounts import AccountRules, one_account
from sidecar.engine.store.accounts import AccountStore
from sidecar.engine.store.database import Store
from sidecar.engine.store.owner import StateOwnerError, check_owner
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError, ImmichPermissionError
from sidecar.immich.permissions import STATE_OWNER, Feature, features_in_use, rule_features

log = logging.getLogger(__name__)


Resolver = Callable[[Settings, Callable[[Rule], bool]], Awaitable[AccountRules]]


async def rules_only(
    client: ImmichClient, settings: Settings, runs: Callable[[Rule], bool]
) -> AccountRules:
    return one_account(await resolve_rules(client, settings, runs))


class ImmichSession:
    """``resolve(settings, runs)`` resolves a config's names for the rules that ``runs``
    (the app's: the rules' people and albums, and what else it looks up with them)."""

    def __init__(
        self,
        client: ImmichClient,
        store: Store,
        access: FeatureAccess,
        resolve: Resolver | None = None,
    ) -> None:
        self._client = client
        self._others: tuple[tuple[str, ImmichClient], ...] = ()  # watch_owners
        self._owners_checked: set[str] = set()
        self._store = store
        self._resolve: Resolver = resolve or (
            lambda settings, runs: rules_only(client, settings, runs)
        )
        self.access = access
        self.rules: AccountRules | None = None  # the running config's, resolved per account
        self._rules_off: frozenset[Feature] = frozenset()  # rule features off when resolved
        self._owner_checked = False
        self._unexpected: set[str] = set()  # permissions refused that no feature lists

    async def connect(self, settings: Settings, *, bot: bool) -> None:
        """Read the key's permissions, check the state file's owner, resolve the rules that
        can run. Raises ImmichError, StateOwnerError or RuleResolutionError."""
        self.access.use(features_in_use(settings, bot=bot))
        self.access.granted(await self._client.key_permissions())
        await self._check_owner(settings)
        if self.rules is None:
            await self.resolve(settings)

    async def recheck(self, settings: Settings) -> None:
        """Before a poll: while a feature is off, read the key's permissions again (one small
        request), and resolve the rules again when a rule's feature turned on or off, or while
        an account's names could not be looked up (at start or at a reload)."""
        if self.access.anything_off:
            self.access.granted(await self._client.key_permissions())
        if self.access.off_running() != self._rules_off or self.waiting:
            await self.resolve(settings)
        await self._check_owner(settings)

    async def resolve(self, settings: Settings) -> None:
        self.rules = await self._resolve(settings, self.runs)
        self._rules_off = self.access.off_running()

    async def resolve_for_reload(
        self, running: Settings, new: Settings, *, bot: bool
    ) -> AccountRules:
        """The rules of a new config (the caller swaps them in with it)."""
        self.access.use(features_in_use(new, bot=bot))
        try:
            rules = await self._resolve(new, self.runs)
        except BaseException:
            self.access.use(features_in_use(running, bot=bot))  # refused: the running one stays
            raise
        self._rules_off = self.access.off_running()
        return rules

    @property
    def waiting(self) -> dict[str, str]:
        """The accounts whose names Immich did not answer for (looked up before every poll)."""
        return dict(self.rules.unresolved) if self.rules is not None else {}

    def runs(self, rule: Rule) -> bool:
        """Whether the key allows everything ``rule`` needs."""
        return self.access.all_on(rule_features(rule))

    def refused(self, err: ImmichPermissionError) -> bool:
        """A 403: the key lacks the permission it names, so every feature that needs it is off
        (said once) instead of a retry. False when it names none, or nothing changed."""
        permission = missing_permission(err.message)
        if permission is None:
            return False
        if self.access.refused(permission):
            return True
        if permission not in self._unexpected:  # a call the feature table does not know
            self._unexpected.add(permission)
            log.error("Immich refused %s: the API key lacks %s", err.endpoint, permission)
        return False

    def watch_owners(self, others: Sequence[tuple[str, ImmichClient]]) -> None:
        """The other accounts (name, client): each one's cursors are its user's too."""
        self._others = tuple(others)

    async def _check_owner(self, settings: Settings) -> None:
        """The state file is the first account's user's; each other account's cursors are
        its user's (kept with them): a key of another user under an account's name would
        skip that user's backfill. An account Immich does not answer is checked later."""
        if not self.access.is_on(STATE_OWNER):
            return
        if not self._owner_checked:
            check_owner(self._store, await self._client.me(), settings.immich.url)
            self._owner_checked = True
        for name, client in self._others:
            if name in self._owners_checked:
                continue
            try:
                user = await client.me()
            except ImmichError:  # down, refused, or no user.read: checked once it answers
                continue
            try:
                check_owner(AccountStore(self._store, name), user, settings.immich.url)
            except StateOwnerError as err:
                raise StateOwnerError(f"account {name}: {err}") from None
            self._owners_checked.add(name)
