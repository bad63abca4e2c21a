"""What the running sidecar knows of the Immich it talks to: which features the API key allows
(``engine.access``), whose state file it is (``engine.state_owner``), and the rules resolved
for the features that are on. Kept in step: a rule's feature turning on or off resolves the
rules again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from sidecar.config.model import Rule, Settings
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.planning import resolve_rules
from sidecar.engine.rules.accounts import AccountRules, one_account
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.store.accounts import AccountStore
from sidecar.engine.store.database import Store
from sidecar.engine.store.owner import RESET_FIX, StateOwnerError, check_owner
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichAuthError, ImmichError, ImmichPermissionError
from sidecar.immich.permissions import (
    PEOPLE,
    STATE_OWNER,
    Feature,
    features_in_use,
    rule_features,
)
from sidecar.ops.metrics import Metrics

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
        self._others: tuple[tuple[str, ImmichClient], ...] = ()  # add_accounts
        self._owners_checked: set[str] = set()
        self._rotated = False  # a key changed at the reload being resolved
        # The other accounts' rule features, each by its own key (the first's: ``access``).
        self.account_access: dict[str, FeatureAccess] = {}
        self._store = store
        self._resolve: Resolver = resolve or (
            lambda settings, runs: rules_only(client, settings, runs)
        )
        self.access = access
        self.rules: AccountRules | None = None  # the running config's, resolved per account
        # rule features off when resolved, by account ("": the first)
        self._rules_off: frozenset[tuple[str, Feature]] = frozenset()
        self._owner_checked = False
        self._unexpected: set[str] = set()  # permissions refused that no feature lists

    async def connect(self, settings: Settings, *, bot: bool) -> None:
        """Read the key's permissions, check the state file's owner, resolve the rules that
        can run. Raises ImmichError, StateOwnerError or RuleResolutionError."""
        self.access.use(features_in_use(settings, bot=bot))
        await self._read_first()
        await self._read_accounts(settings, every=True)
        await self._check_owner(settings)
        if self.rules is None:
            await self.resolve(settings)

    async def recheck(self, settings: Settings) -> None:
        """Before a poll: while a feature is off, read the key's permissions again (one small
        request), and resolve the rules again when a rule's feature turned on or off, or while
        an account's names could not be looked up (at start or at a reload)."""
        if self.access.anything_off or not self.access.known:
            await self._read_first()
        await self._read_accounts(settings, every=False)
        if self._off_now() != self._rules_off or self.waiting:
            await self.resolve(settings)
        await self._check_owner(settings)

    async def resolve(self, settings: Settings) -> None:
        self.rules = self._per_account(await self._resolve(settings, self.runs))
        self._rules_off = self._off_now()

    async def resolve_for_reload(
        self, running: Settings, new: Settings, *, bot: bool
    ) -> AccountRules:
        """The rules of a new config (the caller swaps them in with it)."""
        self.access.use(features_in_use(new, bot=bot))
        try:
            await self._read_accounts(new, every=True)
            rules = self._per_account(await self._resolve(new, self.runs))
            await self._check_rotated(new)
        except BaseException:
            self.access.use(features_in_use(running, bot=bot))  # refused: the running one stays
            raise
        self._rules_off = self._off_now()
        return rules

    def refused_in(self, account: str, err: ImmichPermissionError) -> bool:
        """A 403 in one account's poll: what needs the permission is off there (said once)."""
        access = self.account_access.get(account)
        if access is None:
            return self.refused(err)
        permission = missing_permission(err.message)
        return permission is not None and bool(access.refused(permission))

    def rekeyed(self, accounts: Sequence[str]) -> None:
        """These accounts' keys changed: whose user each one is is checked again."""
        others = {name for name, _ in self._others}
        self._owners_checked -= set(accounts)
        if any(name not in others for name in accounts):  # the first account's
            self._owner_checked = False
        self._rotated = bool(accounts)

    async def _check_rotated(self, new: Settings) -> None:
        """After a key rotated: a key of another user than the account's cursors belong to
        refuses the reload (that user's backfill would be skipped). Immich not answering
        leaves the check to the next poll."""
        if not self._rotated:
            return
        self._rotated = False
        try:
            await self._check_owner(new)
        except StateOwnerError as err:
            problem = str(err).removesuffix(f": {RESET_FIX}")
            fix = "put that account's own user's key there"
            raise RuleResolutionError([f"{new.source}: immich: {problem}; {fix}"]) from None
        except ImmichError as err:
            log.debug("the rotated key's user could not be checked yet (%s)", err)

    @property
    def waiting(self) -> dict[str, str]:
        """The accounts whose names Immich did not answer for (looked up before every poll)."""
        return dict(self.rules.unresolved) if self.rules is not None else {}

    def runs(self, rule: Rule) -> bool:
        """Whether the (first account's) key allows everything ``rule`` needs."""
        return self.access.all_on(rule_features(rule))

    def runs_in(self, account: str) -> Callable[[Rule], bool]:
        """Whether ``account``'s key allows everything a rule needs there."""
        access = self.account_access.get(account)
        if access is None:
            return self.runs
        return lambda rule: self.runs(rule) and access.all_on(rule_features(rule))

    def without_people(self) -> frozenset[str]:
        """The other accounts whose key may not look people up (their person rules are off)."""
        return frozenset(n for n, a in self.account_access.items() if not a.is_on(PEOPLE))

    def _off_now(self) -> frozenset[tuple[str, Feature]]:
        """The rule features that are off, by account ("": the first)."""
        off = {("", f) for f in self.access.off_running()}
        off.update((n, f) for n, a in self.account_access.items() for f in a.off_running())
        return frozenset(off)

    def _per_account(self, rules: AccountRules) -> AccountRules:
        """Each account's rules without those its own key does not allow."""
        by_account = {
            name: tuple(r for r in own if self.runs_in(name)(r.rule))
            for name, own in rules.by_account.items()
        }
        return replace(rules, by_account=by_account)

    def add_accounts(self, others: Sequence[tuple[str, ImmichClient]], metrics: Metrics) -> None:
        """The other accounts (name, client): each one's key decides its rules' features, and
        each one's cursors are its user's."""
        self._others = tuple(others)
        self.account_access = {name: FeatureAccess(metrics, name) for name, _ in others}

    async def _read_first(self) -> None:
        """The first account's key's permissions. With other accounts, a refused key (401)
        holds only its own account: it is not polled (its names cannot be looked up) and is
        read again before every poll."""
        try:
            self.access.granted(await self._client.key_permissions())
        except ImmichAuthError:
            if not self._others:
                raise

    async def _read_accounts(self, settings: Settings, *, every: bool) -> None:
        """The other accounts' keys' permissions for the rule features (``every``: each one;
        else those with something off). One Immich does not answer is read later."""
        features = list(dict.fromkeys(f for r in settings.rules for f in rule_features(r)))
        for name, client in self._others:
            access = self.account_access[name]
            if not every and access.known and not access.anything_off:
                continue
            access.use(features)
            try:
                access.granted(await client.key_permissions())
            except ImmichError as err:
                log.debug("account %s: its key's permissions could not be read (%s)", name, err)

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

    async def _check_owner(self, settings: Settings) -> None:
        """The state file is the first account's user's; each other account's cursors are
        its user's (kept with them): a key of another user under an account's name would
        skip that user's backfill. An account Immich does not answer is checked later."""
        if not self.access.is_on(STATE_OWNER):
            return
        if not self._owner_checked:
            try:
                user = await self._client.me()
            except ImmichAuthError:
                if not self._others:
                    raise
            else:
                check_owner(self._store, user, settings.immich.url)
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
