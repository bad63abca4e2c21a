"""People links at run time: who is linked to whom (the config's links, then approved claims),
who gets a DM for an asset, who a post mentions, and whether a linked person still exists.

Each Immich account has its own people, so one member is linked to one person per account:
a config link (``discord.members``) names a person, found in every account by that name or an
alias; a claim names one account's person. Deliveries are matched by person id whichever
account saw the asset (a person id is one person wherever Immich shows it), so a member is
DMed once per delivery. The config's links win: a person linked there cannot be claimed, and a
member linked there has no claims of their own. Claims and DM preferences live in the state
file (``store.members``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from sidecar.clock import utc_now
from sidecar.config.model import DEFAULT_ACCOUNT
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import CompiledRule
from sidecar.engine.store.database import Store
from sidecar.engine.store.members import LEGACY_CLAIMS, Claim
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Asset, Person
from sidecar.ops.logging import log_fields

log = logging.getLogger(__name__)

CLOSED_DMS = "Discord refuses DMs to this member (error 50007: they block DMs from the server)"


@dataclass(frozen=True)
class Link:
    """One Discord member linked to one Immich person (of one account)."""

    person_id: str
    person_name: str
    user_id: int
    source: str  # "config" or "claim"
    problem: str | None = None  # why the link no longer works
    account: str | None = None  # the account whose person it is (None: a config link by id)


class PersonLookup(Protocol):
    """What the directory asks Immich (``ImmichClient.person``)."""

    async def person(self, person_id: str) -> Person | None: ...


class MemberDirectory:
    """The links, the pending claims and the DM preferences, over the store."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._clock = clock
        self._config: dict[str, Link] = {}  # by person id
        self._watched: dict[str, frozenset[str] | None] = {}  # rule -> people (None: anyone)
        self._problems: dict[str, str] = {}  # config links' problems, by person id
        self._accounts: tuple[str, ...] = ()  # the configured accounts (empty: not told)

    def configure(
        self,
        config_links: Iterable[Link],
        rules: AccountRules | Iterable[CompiledRule],
        accounts: Sequence[str] = (),
    ) -> None:
        """The links of a (new) config, the people each rule watches (in every account) and
        the configured accounts (the first takes over the claims made before accounts)."""
        self._config = {}
        for link in config_links:
            self._config.setdefault(link.person_id, link)
        watched = rules.watched() if isinstance(rules, AccountRules) else _watched(rules)
        self._watched = {rule: (ids or None) for rule, ids in watched.items()}
        self._problems = {p: why for p, why in self._problems.items() if p in self._config}
        if accounts:
            self._accounts = tuple(accounts)
            for old in (LEGACY_CLAIMS, DEFAULT_ACCOUNT):
                if old not in accounts and self._store.adopt_claims(old, accounts[0]):
                    log.info("people links: account %s keeps the earlier claims", accounts[0])

    @property
    def store(self) -> Store:
        return self._store

    @property
    def accounts(self) -> tuple[str, ...]:
        return self._accounts

    # -- who is linked ------------------------------------------------------------------------

    def links(self) -> list[Link]:
        """Every working or broken link: the config's, then the approved claims it leaves."""
        config = [
            replace(c, problem=self._problems.get(c.person_id)) for c in self._config.values()
        ]
        users = {link.user_id for link in config}
        claimed = [
            Link(
                c.person_id,
                c.person_name,
                c.user_id,
                "claim",
                c.problem or self._unconfigured(c.account),
                c.account,
            )
            for c in self._store.claims()
            if c.approved and c.person_id not in self._config and c.user_id not in users
        ]
        return config + claimed

    def _unconfigured(self, account: str) -> str | None:
        if not self._accounts or account in self._accounts:
            return None
        return (
            f"the claim is of account {account or '(single key)'}, which is no longer in "
            "immich.accounts; the link does nothing until the account is back or the member "
            "claims again"
        )

    def pending(self) -> list[Claim]:
        return [c for c in self._store.claims() if not c.approved]

    def links_of(self, user_id: int) -> list[Link]:
        return [link for link in self.links() if link.user_id == user_id]

    def config_linked(self, person_id: str) -> bool:
        return person_id in self._config

    def claim_refusal(self, user_id: int, person_id: str, account: str = "") -> str | None:
        """Why this member may not claim this person (of ``account``), or None."""
        if any(link.user_id == user_id for link in self._config.values()):
            return "your link is set in the sidecar's config; ask its admin to change it"
        if person_id in self._config:
            return "that person is linked in the sidecar's config"
        for claim in self._store.claims():
            if claim.person_id == person_id and claim.approved and claim.user_id != user_id:
                return "that person is already linked to another member"
            if (
                claim.user_id == user_id
                and claim.approved
                and claim.account == account
                and claim.person_id != person_id
            ):
                where = f" in account {account}" if len(self._accounts) > 1 else ""
                return f"you are linked to someone else{where} already; /immich unclaim first"
        return None

    def _working(self) -> dict[str, int]:
        """person id -> user id of every link that works."""
        return {link.person_id: link.user_id for link in self.links() if link.problem is None}

    def mentions(self, assets: Iterable[Asset]) -> tuple[tuple[str, int], ...]:
        """(person id, user id) of the linked people in these assets."""
        working = self._working()
        found = {p.id: working[p.id] for a in assets for p in a.people if p.id in working}
        return tuple(sorted(found.items()))

    def dm_recipients(self, rule: str, asset: Asset) -> tuple[int, ...]:
        """The members to DM about this asset for this rule: the linked members of the watched
        people recognised in it (everyone recognised when the rule watches no one in
        particular), each once, without those who muted DMs or whose DMs are closed."""
        watched = self._watched.get(rule)
        working = self._working()
        prefs = self._store.member_prefs()
        users = []
        for person in asset.people:
            if watched is not None and person.id not in watched:
                continue
            user = working.get(person.id)
            if user is None or user in users:
                continue
            pref = prefs.get(user)
            if pref is not None and (pref.dm_muted or pref.dm_closed):
                continue
            users.append(user)
        return tuple(users)

    # -- DM bookkeeping -----------------------------------------------------------------------

    def dms_sent(self, delivery_ids: Iterable[int]) -> set[tuple[int, int]]:
        return self._store.dms_sent(delivery_ids)

    def record_dms(self, user_id: int, delivery_ids: Iterable[int]) -> None:
        self._store.record_dms(user_id, delivery_ids)

    def forget_finished_dms(self) -> None:
        self._store.forget_finished_dms()

    def close_dms(self, user_id: int, reason: str) -> None:
        """DMs to this member fail for good: logged once, shown by /immich members, not tried
        again until the member turns DMs back on (/immich dm on)."""
        known = self._store.member_prefs().get(user_id)
        if known is not None and known.dm_closed:
            return
        self._store.set_dm_closed(user_id, reason)
        log.warning(
            "spotted DMs to Discord member %s stopped: %s; they are not retried until the member "
            "runs /immich dm on",
            user_id,
            reason,
            extra=log_fields(reason="dm_closed"),
        )

    def dm_status(self, user_id: int) -> str:
        pref = self._store.member_prefs().get(user_id)
        if pref is not None and pref.dm_closed:
            return f"DMs fail: {pref.dm_closed}"
        if pref is not None and pref.dm_muted:
            return "DMs off"
        return "DMs on"

    def set_dms(self, user_id: int, on: bool) -> None:
        self._store.set_dm_muted(user_id, not on)

    # -- do the linked people still exist? ----------------------------------------------------

    async def check_people(self, immich: PersonLookup | Mapping[str, PersonLookup]) -> list[Link]:
        """Ask Immich about every linked person, through the account it belongs to (any
        account for a config link by id); a deleted or merged one is reported (log line,
        ``/immich members``) and its link stops working, the member's links in the other
        accounts go on. Returns the broken links."""
        lookups = immich if isinstance(immich, Mapping) else {"": immich}
        for link in self.links():
            if link.source == "claim" and self._unconfigured(link.account or ""):
                continue  # its account is not configured: nothing to ask
            try:
                person = await _find(lookups, link)
            except ImmichError as err:
                log.info("could not check linked person %s yet (%s)", link.person_id, err)
                continue
            several = len(self._accounts) > 1
            problem = None if person is not None else missing_person(link, several=several)
            if problem != link.problem and problem is not None:
                log.warning("people link: %s", problem, extra=log_fields(reason="person_gone"))
            if link.source == "config":
                if problem is None:
                    self._problems.pop(link.person_id, None)
                else:
                    self._problems[link.person_id] = problem
            elif problem != link.problem:
                self._store.set_claim_problem(link.user_id, link.person_id, problem)
        return [link for link in self.links() if link.problem is not None]


async def _find(lookups: Mapping[str, PersonLookup], link: Link) -> Person | None:
    """The linked person as its account answers (every account for a link by id)."""
    own = lookups.get(link.account or "")
    for lookup in [own] if own is not None else lookups.values():
        person = await lookup.person(link.person_id)
        if person is not None:
            return person
    return None


def _watched(rules: Iterable[CompiledRule]) -> dict[str, frozenset[str]]:
    return {rule.name: rule.watched_person_ids for rule in rules}


def missing_person(link: Link, *, several: bool = False) -> str:
    where = f" in account {link.account}" if link.account and several else ""
    return (
        f"{link.person_name or link.person_id!r} (linked to Discord member {link.user_id}) is no "
        f"longer in Immich{where} (deleted, or merged into another person); the link does nothing "
        "until "
        + (
            "discord.members names the person again"
            if link.source == "config"
            else "the member claims again (/immich claim)"
        )
    )
