"""What ``explain`` reads before it decides: the asset through every account that can see it,
its albums, and the state file (read only: safe beside a running sidecar)."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sidecar.clock import utc_now
from sidecar.config.model import Settings
from sidecar.engine.accounts import Accounts
from sidecar.engine.explain.decide import AccountFacts, Facts, rule_verdicts
from sidecar.engine.explain.verdict import AssetSummary, Explanation, RuleBlock
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import faces
from sidecar.engine.store.accounts import AccountStore
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import LAST_POLL_KEY, STREAM_CURSOR_KEY
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Asset, is_immich_id

_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# Statuses with which Immich says "this key cannot see that asset" (400 on 2.x and 3.x).
_NOT_VISIBLE = frozenset({400, 403, 404})


class ExplainError(Exception):
    """Why there is no answer, in one sentence."""


class AssetRefError(ExplainError, ValueError):
    """The argument is neither an asset id nor a link to one."""


class AssetNotFound(ExplainError, LookupError):
    """No configured account can read the asset."""


def asset_id_of(text: str) -> str:
    """The asset id in ``text``: an id, or an Immich link to the asset (``/photos/ID``, in an
    album ``/albums/A/photos/ID``, or an API path ``/api/assets/ID``)."""
    given = text.strip()
    if is_immich_id(given):
        return given.lower()
    found = re.search(rf"/(?:photos|assets)/({_UUID.pattern})(?:[/?#]|$)", given)
    if found is None:
        shown = given if len(given) <= 80 else given[:77] + "..."
        raise AssetRefError(
            f"{shown!r} is not an asset id or an Immich link to an asset (expected a UUID like "
            "0c2f…-… or a link like https://photos.example/photos/<id>)"
        )
    return found.group(1).lower()


class Explainer:
    """Answers ``explain`` for the rules ``rules`` compiled (the CLI resolves them itself; the
    running sidecar passes its own). ``store`` may be opened read-only."""

    def __init__(
        self,
        settings: Settings,
        accounts: Accounts,
        rules: AccountRules,
        store: Store,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._accounts = accounts
        self._rules = rules
        self._store = store
        self._clock = clock

    async def explain(self, asset_id: str) -> Explanation:
        """Raises AssetNotFound, or ImmichError when Immich cannot be read."""
        now = self._clock()
        seen = await self._read(asset_id)
        asset = next(iter(seen.values()))
        owner = await self._owner(asset)
        facts = Facts(
            now=now,
            settings=self._settings,
            rules=self._rules,
            seen=seen,
            owner=owner,
            accounts={a.name: self._account_facts(a.name, asset) for a in self._accounts},
            deliveries=tuple(self._store.deliveries_of(asset.id)),
            matched=self._store.matched_at(asset.id),
            in_albums=frozenset(self._store.albums_holding(asset.id)),
            albums_now=await self._albums_now(asset),
            push_on=self._settings.push is not None,
            last_push=self._store.get_time(LAST_PUSH_KEY),
        )
        blocks = tuple(
            RuleBlock(rule.name, bool(rule.albums.any), rule.targets, rule_verdicts(rule, facts))
            for rule in self._settings.rules
        )
        summary = AssetSummary(
            id=asset.id,
            file_name=asset.original_file_name,
            type=asset.type,
            uploaded=asset.created_at,
            taken=asset.taken_at,
            faces=faces(asset),
            seen_by=tuple(seen),
            owner=owner,
        )
        return Explanation(summary, blocks, self._settings.timezone, now)

    async def _read(self, asset_id: str) -> dict[str, Asset]:
        """The asset as each account reads it (those that can), in config order."""
        seen: dict[str, Asset] = {}
        failures: list[ImmichError] = []
        for account in self._accounts:
            try:
                seen[account.name] = await account.client.asset(asset_id)
            except ImmichError as err:
                if err.status in _NOT_VISIBLE:
                    continue
                failures.append(err)
        if not seen:
            if failures:
                raise failures[0]
            raise AssetNotFound(
                f"no configured Immich account can read asset {asset_id} (not found, or "
                "another user's that is not shared with them)"
            )
        return seen

    async def _owner(self, asset: Asset) -> str | None:
        """The account whose user owns the asset (asked only with several accounts)."""
        if len(self._accounts) < 2 or not asset.owner_id:
            return None
        for account in self._accounts:
            try:
                if (await account.client.me()).id == asset.owner_id:
                    return account.name
            except ImmichError:
                continue
        return None

    def _account_facts(self, name: str, asset: Asset) -> AccountFacts:
        own = AccountStore(self._store, name)  # each account's poll keeps its own state
        unread = tuple(
            (window, asset.id in own.unread_seen(window.id)) for window in own.unread_windows()
        )
        return AccountFacts(
            name=name,
            last_poll=own.get_time(LAST_POLL_KEY),
            stream_cursor=own.get_time(STREAM_CURSOR_KEY),
            baselines=own.stored_baselines(),
            unread=unread,
        )

    async def _albums_now(self, asset: Asset) -> frozenset[str]:
        """The watched albums Immich lists the asset in now: the month of the album's timeline
        it was taken in (and the days either side, as buckets are the owner's local months)."""
        watched = sorted(
            {a for rules in self._rules.by_account.values() for r in rules for a in r.albums}
        )
        if not watched or asset.taken_at is None:
            return frozenset()
        months = {
            (asset.taken_at + timedelta(days=shift)).strftime("%Y-%m") for shift in (-1, 0, 1)
        }
        client = self._accounts.albums()
        found: set[str] = set()
        for album_id in watched:
            buckets = await client.album_buckets(album_id)
            for bucket in _buckets_of(buckets, months):
                if any(a.id == asset.id for a in await client.album_bucket(album_id, bucket)):
                    found.add(album_id)
                    break
        return frozenset(found)


def _buckets_of(buckets: dict[str, int], months: set[str]) -> Sequence[str]:
    return [bucket for bucket in buckets if bucket[:7] in months]
