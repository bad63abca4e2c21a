"""A config's names looked up in Immich as the running sidecar needs them: the rules' people and
albums in every account (for the rules that can run), and the member links' people while the
key may read them. The member directory follows what was looked up last.

Names are looked up at start, at a reload, when a feature turns on or off, and every hour
(``engine.poll``'s people check): a person renamed, merged or given the same name as another
in Immich is followed, and what changed is said once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping

from sidecar.config.model import Rule, Settings
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import Accounts
from sidecar.engine.members import Link, MemberDirectory, PersonLookup
from sidecar.engine.planning import PeopleSearch, resolve_account_rules, resolve_member_links
from sidecar.engine.rules.accounts import AccountRules, people_changes
from sidecar.immich.permissions import CLAIMS

log = logging.getLogger(__name__)


class ConfigLookup:
    """``resolve`` is the session's resolver (``ImmichSession``): at connect, at a recheck and
    for a reload. The links it found wait in ``links`` until ``follow`` hands them over with the
    rules that were resolved with them."""

    def __init__(self, accounts: Accounts, access: FeatureAccess, directory: MemberDirectory):
        self._accounts = accounts
        self._access = access
        self._directory = directory
        self.links: list[Link] = []  # discord.members of the config being applied
        # the accounts whose keys may not look people up (the session's; set by the app)
        self.without_people: Callable[[], Collection[str]] = frozenset
        self._followed: AccountRules | None = None
        self._said: set[str] = set()  # the sentences about names already logged

    async def resolve(self, settings: Settings, runs: Callable[[Rule], bool]) -> AccountRules:
        """Look the people of a config up in Immich: the rules' that can run, and its member
        links' while the key allows them (``person.read``), each name once per account."""
        search = PeopleSearch(settings.people_aliases)
        rules = await resolve_account_rules(
            self._accounts, settings, runs, search, self.without_people()
        )
        notes = rules.ambiguities()
        if self._access.is_on(CLAIMS):
            self.links, link_notes = await resolve_member_links(
                self._accounts, settings, search, {*rules.unresolved, *self.without_people()}
            )
            notes += [note for note in link_notes if note not in notes]
        else:
            self.links = []
        for note in notes:
            self.say(f"people: {note}")
        return rules

    def follow(self, rules: AccountRules) -> None:
        """The member directory takes the links looked up last and the people ``rules`` watch;
        the first time, where each name was found is said, later what changed."""
        self._directory.configure(self.links, rules, self._accounts.names)
        if self._followed is None:
            if len(self._accounts) > 1 or any(rules.aliased()):
                for line in rules.where_found():
                    log.info("people: %s", line)
        else:
            for change in people_changes(self._followed, rules):
                log.warning("people: %s", change)
        self._followed = rules

    def say(self, sentence: str) -> None:
        """Log a sentence about the config's names once (until it changes)."""
        if sentence not in self._said:
            self._said.add(sentence)
            log.warning("%s", sentence)

    def people_lookups(self) -> Mapping[str, PersonLookup]:
        """Each account's client, to ask about a linked person in its own account."""
        return {account.name: account.client for account in self._accounts}
