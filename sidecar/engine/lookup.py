"""A config's names looked up in Immich as the running sidecar needs them: the rules' people and
albums in every account (for the rules that can run), and the member links' people while the
key may read them. The member directory follows what was looked up last."""

from __future__ import annotations

from collections.abc import Callable

from sidecar.config.model import Rule, Settings
from sidecar.engine.access import FeatureAccess
from sidecar.engine.accounts import Accounts
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.planning import resolve_account_rules, resolve_member_links
from sidecar.engine.rules.accounts import AccountRules
from sidecar.immich.permissions import CLAIMS


class ConfigLookup:
    """``resolve`` is the session's resolver (``ImmichSession``): at connect, at a recheck and
    for a reload. The links it found wait in ``links`` until ``follow`` hands them over with the
    rules that were resolved with them."""

    def __init__(self, accounts: Accounts, access: FeatureAccess, directory: MemberDirectory):
        self._accounts = accounts
        self._access = access
        self._directory = directory
        self.links: list[Link] = []  # discord.members of the config being applied

    async def resolve(self, settings: Settings, runs: Callable[[Rule], bool]) -> AccountRules:
        """Look the people of a config up in Immich: the rules' that can run, and its member
        links' while the key allows them (``person.read``)."""
        rules = await resolve_account_rules(self._accounts, settings, runs)
        client = self._accounts.first.client
        links_on = self._access.is_on(CLAIMS)
        self.links = await resolve_member_links(client, settings) if links_on else []
        return rules

    def follow(self, rules: AccountRules) -> None:
        """The member directory takes the links looked up last and the people ``rules`` watch."""
        self._directory.configure(self.links, rules.first)
