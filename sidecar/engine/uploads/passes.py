"""What one poll asks Immich and how it decides (the poller, the fast polls, the catch-up of
a rule back on and the dry run use it): the ``Watch`` (the rules and settings of one account's
poll), the ``Window`` of time each kind of rule looks at, and the passes over it (see
``poller`` for why each kind of rule is polled as it is).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sidecar.engine.rules.matching import CompiledRule, Match, matches_for
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.stream import (
    EAGER,
    SETTLED,
    StreamClient,
    StreamPass,
    UnreadLedger,
)
from sidecar.immich.models import Asset


class AssetSearch(StreamClient, Protocol):
    """The part of the Immich client a poll uses (it picks the form the server's version
    understands)."""

    def assets_of_people(
        self,
        person_ids: Iterable[str],
        since: datetime,
    ) -> AsyncIterator[tuple[Asset, ...]]: ...

    async def count_since(self, since: datetime, *, changed: bool = False) -> int: ...


@dataclass(frozen=True)
class Watch:
    """What a poll needs from the settings; replaced as a whole when the config reloads."""

    rules: tuple[CompiledRule, ...]
    targets_of: Callable[[str], Sequence[str]]  # rule name -> its target names
    lookback: timedelta
    settle: timedelta
    # This account's upload rules that do not run because a feature they need is off (a
    # permission the key lacks): held where they stopped (``engine.uploads.holds``); and
    # whether album rules are off too (the albums' state is kept for them).
    held: tuple[str, ...] = ()
    albums_held: bool = False

    @property
    def person_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if r.requires_person and not r.watches_albums)

    @property
    def stream_rules(self) -> tuple[CompiledRule, ...]:
        return tuple(r for r in self.rules if not r.requires_person and not r.watches_albums)

    @property
    def eager_rules(self) -> tuple[CompiledRule, ...]:
        """Rules without people and without ``none:``: an asset's metadata is all they wait
        for."""
        return tuple(r for r in self.stream_rules if not r.none)

    @property
    def album_rules(self) -> tuple[CompiledRule, ...]:
        """Rules that fire on additions to albums (sidecar/albums.py polls them)."""
        return tuple(r for r in self.rules if r.watches_albums)


@dataclass(frozen=True)
class Window:
    people_since: datetime  # person rules: assets created at or after this
    stream_after: datetime  # other rules: assets created in [stream_after, stream_before]
    stream_before: datetime
    settled_before: datetime  # person rules with `none:` wait until an asset is this old
    # eager rules: assets created in [eager_after, eager_before] (None: no eager pass)
    eager_after: datetime | None = None
    eager_before: datetime | None = None


@dataclass(frozen=True)
class Collected:
    examined: int  # assets looked at
    waiting: int  # new assets left for later: Immich has not read their files yet


def single_type(rules: Iterable[CompiledRule]) -> str | None:
    """The one asset type all these rules want, to let Immich filter by it; else None."""
    wanted: set[str] = set()
    for rule in rules:
        wanted |= rule.rule.asset_types
    return next(iter(wanted)) if len(wanted) == 1 else None


def window_for(
    now: datetime,
    last_poll: datetime | None,
    stream_cursor: datetime,
    lookback: timedelta,
    settle: timedelta,
    eager_cursor: datetime | None = None,
) -> Window:
    """The time ranges one poll looks at.

    The look-back runs from the start of the last successful poll, not from now, so an outage
    longer than the look-back loses nothing: the first poll after it reaches back far enough.
    """
    reference = min(last_poll, now) if last_poll is not None else now
    settled = now - settle
    return Window(
        people_since=reference - lookback,
        stream_after=stream_cursor,
        stream_before=max(settled, stream_cursor),
        settled_before=settled,
        # The first eager pass starts where the settled one ends: no asset fetched twice.
        eager_after=eager_cursor or max(settled, stream_cursor),
        eager_before=now,
    )


def people_since(
    person_rules: Sequence[CompiledRule], window: Window, baselines: Mapping[str, datetime]
) -> datetime:
    """The person rules look at assets created from then on: the look-back window, or later
    when every one of them started after it."""
    since = window.people_since
    starts = [baselines[r.name] for r in person_rules if r.name in baselines]
    if starts and len(starts) == len(person_rules):
        since = max(since, min(starts))
    return since


def settled_for(rule: CompiledRule, asset: Asset, window: Window) -> bool:
    """Whether a person rule may queue its match now: an exclusion (``none:``) can only be
    trusted once faces had time to be recognised (``poll.settle``)."""
    return not rule.none or asset.created_at <= window.settled_before


def stream_spans(watch: Watch, window: Window) -> dict[str, tuple[datetime, datetime]]:
    """The creation spans the rules without people pass over: the eager rules' (from their
    cursor to now) and every such rule's (settled), each when it has rules and is not empty."""
    spans: dict[str, tuple[datetime, datetime]] = {}
    after, before = window.eager_after, window.eager_before
    if watch.eager_rules and after is not None and before is not None and before > after:
        spans[EAGER] = (after, before)
    if watch.stream_rules and window.stream_before > window.stream_after:
        spans[SETTLED] = (window.stream_after, window.stream_before)
    return spans


async def collect_matches(
    client: AssetSearch,
    watch: Watch,
    window: Window,
    baselines: dict[str, datetime],
    on_page: Callable[[list[Match]], None],
    ledger: UnreadLedger | None = None,
    now: datetime | None = None,
) -> Collected:
    """Fetch the candidate assets page by page and hand each page's matches to ``on_page``.
    Memory stays bounded by one page. New assets that Immich has not read yet are remembered
    in ``ledger`` (None: a dry run, which only counts them)."""
    seen = 0
    person_rules = watch.person_rules
    if person_rules:
        since = people_since(person_rules, window, baselines)
        watched = frozenset().union(*(r.watched_person_ids for r in person_rules))
        async for page in client.assets_of_people(watched, since):
            seen += len(page)
            found = matches_for(person_rules, page, baselines)
            on_page([m for m in found if settled_for(m.rule, m.asset, window)])
    spans = stream_spans(watch, window)
    if len(spans) == 2 and not await client.count_assets(
        min(spans.values())[0], max(b for _, b in spans.values()), single_type(watch.stream_rules)
    ):
        spans = {}  # one count for both passes when nothing is new: an idle poll's cost
    waiting = 0
    for kind, (after, before) in spans.items():
        rules = watch.eager_rules if kind == EAGER else watch.stream_rules
        stream = StreamPass(client, rules, single_type(rules), baselines, on_page, kind)
        outcome = await stream.new_window(after, before, now or before, ledger)
        seen += outcome.examined
        if kind != EAGER:
            waiting = outcome.waiting
    return Collected(seen, waiting)


async def revisit_unread(
    client: StreamClient,
    watch: Watch,
    store: Store,
    baselines: dict[str, datetime],
    on_page: Callable[[list[Match]], None],
    now: datetime,
    kinds: tuple[str, ...] | None = None,
) -> int:
    """Look again at the windows whose assets Immich had not all read (``kinds``: only those
    of these kinds); returns how many assets were decided. An eager window is the eager rules'
    (no ``settle``), the others every rule without people's. Without its rules, nothing waits
    for a window."""
    windows = [w for w in store.unread_windows() if kinds is None or w.kind in kinds]
    decided = 0
    for window in windows:
        rules = watch.eager_rules if window.kind == EAGER else watch.stream_rules
        if not rules:
            store.close_unread_window(window.id)
            continue
        stream = StreamPass(client, rules, single_type(rules), baselines, on_page, window.kind)
        decided += await stream.unread_window(window, now, watch.settle, store)
    return decided
