"""Album rules: notice assets *added* to watched albums, at a cost that grows with what changed.

Immich records no "added to album at" time, and adding an asset changes neither the asset's
``updatedAt`` nor (for an untouched old photo) the album's ``lastModifiedAssetTimestamp``. So
the sidecar remembers each watched album (its counters, its members per month, every member it
has seen) and compares:

1. one listing per poll (``GET /api/albums``; two on 2.x when the watched albums mix owned-only
   and shared ones): an album whose ``assetCount``, ``updatedAt`` and
   ``lastModifiedAssetTimestamp`` are unchanged costs nothing more;
2. for a changed album, its per-month counts (``GET /api/timeline/buckets?albumId=``), and only
   the months that grew (``GET /api/timeline/bucket``, a compact columnar answer with every
   member's id and owner);
3. the new members' people and exif: one album search per hour of taken time
   (``POST /api/search/metadata`` with ``albumIds``), and ``GET /api/assets/{id}`` for what the
   search does not return (on 2.x: other users' assets in a shared album).

The members of an album when it is first watched are its baseline and are not announced. A
member once seen stays remembered when it is removed, so adding it back announces nothing.
Known limit: between two polls, an asset removed and another added in the same month leave
that month's count unchanged, and the addition is not noticed.

Pure functions (diffing, grouping) are separate from ``AlbumWatcher``, the I/O; resolving the
config's album names is ``albums.resolve``, the dry run's preview ``albums.preview``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sidecar.engine.albums.resolve import AlbumLister, all_listings, is_v2, list_albums
from sidecar.engine.rules.matching import CompiledRule, Match, match
from sidecar.engine.store.albums import AlbumState
from sidecar.engine.store.database import Store
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import AlbumSummary, Asset, BucketAsset
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef
from sidecar.wording import count

log = logging.getLogger(__name__)

# New members taken within this span of each other are fetched with one album search; the
# search also returns the album's other members of that span, so it is kept short.
DETAIL_SPAN = timedelta(hours=1)


class AlbumClient(AlbumLister, Protocol):
    """The part of the Immich client that album rules use."""

    async def album_buckets(self, album_id: str) -> dict[str, int]: ...

    async def album_bucket(self, album_id: str, time_bucket: str) -> list[BucketAsset]: ...

    async def asset(self, asset_id: str) -> Asset: ...

    async def album_assets_taken_between(
        self,
        album_id: str,
        taken_after: datetime,
        taken_before: datetime,
    ) -> list[Asset]: ...


# -- diffing (pure) -----------------------------------------------------------------------------


def album_changed(state: AlbumState, listed: AlbumSummary) -> bool:
    """Whether an album may have new members since ``state`` was saved."""
    return (state.asset_count, state.updated_at, state.last_modified) != (
        listed.asset_count,
        listed.updated_at,
        listed.last_modified_asset,
    )


def grown_buckets(old: Mapping[str, int], new: Mapping[str, int]) -> list[str]:
    """The months that have more members than before (a new month counts as grown)."""
    return [bucket for bucket, count in new.items() if count > old.get(bucket, 0)]


def listings_for(
    is_v2: bool,
    watched: Iterable[str],
    states: Mapping[str, AlbumState],
) -> tuple[bool | None, ...]:
    """Which album listings one poll needs. 3.x lists everything in one call. 2.x lists owned
    albums without a parameter and shared ones (owned or not) with ``shared=true``: one call
    when every watched album is known to be in the same list, both otherwise."""
    if not is_v2:
        return (None,)
    flags = {states[a].shared if a in states else None for a in watched}
    if flags == {True}:
        return (True,)
    if flags == {False}:
        return (None,)
    return (None, True)


def detail_ranges(
    assets: Sequence[BucketAsset],
    span: timedelta = DETAIL_SPAN,
) -> list[tuple[datetime, datetime]]:
    """Taken-time ranges, each at most ``span`` long, that together cover ``assets``."""
    ranges: list[tuple[datetime, datetime]] = []
    for taken in sorted(a.taken_at for a in assets):
        if ranges and taken - ranges[-1][0] <= span:
            ranges[-1] = (ranges[-1][0], taken)
        else:
            ranges.append((taken, taken))
    return ranges


def watched_ids(rules: Iterable[CompiledRule]) -> list[str]:
    """The ids of the albums that ``rules`` watch, sorted."""
    return sorted(frozenset[str]().union(*(r.albums for r in rules)))


def album_matches(
    rules: Iterable[CompiledRule], album_id: str, assets: Iterable[Asset]
) -> list[tuple[CompiledRule, Match]]:
    """What the rules watching ``album_id`` say of the assets added to it."""
    added = tuple(assets)
    return [
        (rule, m)
        for rule in rules
        if album_id in rule.albums
        for m in (match(rule, asset) for asset in added)
        if m is not None
    ]


# -- polling ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlbumAddition:
    """Assets found added to a watched album (people and exif inline)."""

    album: AlbumRef
    assets: tuple[Asset, ...]


@dataclass(frozen=True)
class AlbumPollResult:
    albums_watched: int
    albums_changed: int
    added: int  # new members found (before the rules filter them)
    matches: int
    queued: int


class AlbumWatcher:
    """Finds additions to the albums that album rules watch and queues the matching ones."""

    def __init__(self, client: AlbumClient, store: Store, metrics: Metrics) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._missing_logged: set[str] = set()

    async def poll(
        self,
        rules: Sequence[CompiledRule],
        targets_of: Callable[[str], Sequence[str]],
        now: datetime,
    ) -> AlbumPollResult:
        store = self._store
        watched = watched_ids(rules)
        store.forget_albums_except(watched)
        self._metrics.albums_watched.set(len(watched))
        if not watched:
            return AlbumPollResult(0, 0, 0, 0, 0)
        states = store.album_states()
        listed = await self.listed(watched, states)
        changed = added = matches = queued = 0
        for album_id in watched:
            album = listed.get(album_id)
            if album is None:
                continue
            state = states.get(album_id)
            if state is None:
                await self._take_baseline(album)
                continue
            if not album_changed(state, album):
                continue
            changed += 1
            self._metrics.album_changes.inc()
            found, new_state, fresh = await self.additions(album, state)
            added += len(found.assets)
            hits = album_matches(rules, album_id, found.assets)
            matches += len(hits)
            rows = [
                (rule.name, target, hit.asset)
                for rule, hit in hits
                for target in targets_of(rule.name)
            ]
            # Queued before the album's state moves on: a crash in between finds the same
            # additions again, and the outbox ignores what it already holds.
            queued += store.enqueue(rows, now, album=found.album)
            store.save_album(new_state, fresh)
            self._metrics.album_assets_added.inc(len(found.assets))
        if changed:
            log.info(
                "albums: %d of %d watched changed, %s added, %s queued",
                changed,
                len(watched),
                count(added, "asset"),
                count(queued, "delivery", "deliveries"),
            )
        return AlbumPollResult(len(watched), changed, added, matches, queued)

    async def listed(
        self,
        watched: Sequence[str],
        states: Mapping[str, AlbumState],
    ) -> dict[str, AlbumSummary]:
        """The watched albums the API key sees now, in as few listings as ``states`` allow; an
        album that vanished is said once until it is back."""
        first = listings_for(is_v2(self._client), watched, states)
        listed = await list_albums(self._client, first)
        if any(a not in listed for a in watched):
            rest = tuple(flag for flag in all_listings(self._client) if flag not in first)
            if rest:  # an album became shared or private since the last poll
                listed.update(await list_albums(self._client, rest))
        for album_id in watched:
            if album_id not in listed and album_id not in self._missing_logged:
                self._missing_logged.add(album_id)
                name = states[album_id].name if album_id in states else album_id
                log.warning(
                    "album %r is no longer visible to the API key (deleted, or no "
                    "longer shared); its rules wait for it",
                    name,
                )
            elif album_id in listed:
                self._missing_logged.discard(album_id)
        return listed

    def _state(self, album: AlbumSummary, buckets: dict[str, int]) -> AlbumState:
        return AlbumState(
            album_id=album.id,
            name=album.name,
            asset_count=album.asset_count,
            updated_at=album.updated_at,
            last_modified=album.last_modified_asset,
            shared=album.shared,
            buckets=buckets,
        )

    async def _take_baseline(self, album: AlbumSummary) -> None:
        """An album seen for the first time: its current members are not announced."""
        buckets = await self._client.album_buckets(album.id)
        members: list[str] = []
        for bucket in buckets:
            members += [a.id for a in await self._client.album_bucket(album.id, bucket)]
        self._store.save_album(self._state(album, buckets), members)
        log.info(
            "album %r: watching from now on; its %s %s the baseline",
            album.name,
            count(len(members), "asset"),
            "is" if len(members) == 1 else "are",
        )

    async def additions(
        self,
        album: AlbumSummary,
        state: AlbumState,
    ) -> tuple[AlbumAddition, AlbumState, list[str]]:
        """What was added since ``state``, the album's new state and its new member ids (the
        caller saves them once the additions are queued)."""
        buckets = await self._client.album_buckets(album.id)
        saved = dict(buckets)
        fresh: list[BucketAsset] = []
        for bucket in grown_buckets(state.buckets, buckets):
            members = await self._client.album_bucket(album.id, bucket)
            if len(members) < buckets[bucket]:
                # The bucket leaves out members Immich has not read yet (it inner-joins the
                # exif table; the count does not): keep the month "grown" until they show.
                saved[bucket] = len(members)
            known = self._store.known_album_members(album.id, (a.id for a in members))
            fresh += [a for a in members if a.id not in known]
        # Archived, hidden or trashed members are remembered but never announced.
        assets = await self._details(album.id, [a for a in fresh if a.on_timeline])
        return (
            AlbumAddition(AlbumRef(album.id, album.name), tuple(assets)),
            self._state(album, saved),
            [a.id for a in fresh],
        )

    async def _details(self, album_id: str, wanted: Sequence[BucketAsset]) -> list[Asset]:
        """People and exif of the new members, in few requests (see the module docstring)."""
        ids = {a.id for a in wanted}
        found: dict[str, Asset] = {}
        for start, end in detail_ranges(wanted):
            for asset in await self._client.album_assets_taken_between(album_id, start, end):
                if asset.id in ids:
                    found[asset.id] = asset
        for item in wanted:
            if item.id in found:
                continue
            try:  # 2.x: another user's asset in a shared album is not in the search
                found[item.id] = await self._client.asset(item.id)
            except ImmichError as err:
                if err.status != 400:  # 400: gone since the bucket was read
                    raise
        return [found[a.id] for a in wanted if a.id in found]

    def watched_albums(self) -> list[tuple[str, int]]:
        """(name, asset count) of every watched album, as last seen (for /immich status)."""
        return sorted((s.name, s.asset_count) for s in self._store.album_states().values())
