"""Rules without people: decide each new asset once, after its metadata arrived.

A search with ``withExif`` (the only way to get an asset's exif and people in the same answer)
inner-joins Immich's exif table. An upload writes that row at once, but an external library's
scan inserts its assets without it: the row appears only when metadata extraction reads the
file, seconds to hours later (a job backlog, a paused queue, a restart of Immich). A cursor
over upload time that moved past such assets would skip them for good.

So each poll counts what was created in its window (``POST /search/statistics`` joins no exif
table) and decides the readable assets. When fewer were readable than were created, the window
is remembered as *unread* (in the state file, so a restart keeps it) with the ids already
decided. Every later poll asks, for each unread window, only for the assets that changed since
it last looked: metadata extraction updates the asset, which moves its ``updatedAt``. An asset
is decided as soon as its metadata is there; when a rule excludes people (``none:``), once it
has been unchanged for ``poll.settle`` (Immich looks for faces only after it read the file, so
an exclusion needs that wait, as for an upload). The window closes when every asset created in
it was decided. After ``METADATA_WAIT`` a window gives up waiting: what is still unread is
decided as it is (its date is the file's, no place, no people), so nothing is lost.

A poll costs one small count per window (none when the window is empty) plus pages of the
assets that were readable or became so: it grows with the new assets, not with the library.

Rules without people and without ``none:`` (*eager*: ``poller``) pass over the newest assets
first, without ``settle``; their unread windows are their own (kind ``eager``: an asset is
decided as soon as its metadata is there), kept apart from those of every rule without people
(kind ``settled``), and one eager window grows with the next pass instead of a new one per pass.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sidecar.engine.rules.matching import CompiledRule, Match, matches_for
from sidecar.engine.store.unread import UnreadWindow
from sidecar.immich.models import Asset
from sidecar.wording import count

log = logging.getLogger(__name__)

EAGER = "eager"  # an unread window of the rules without people and without `none:`
SETTLED = "settled"  # an unread window of every rule without people
METADATA_WAIT = timedelta(hours=24)  # then an unread asset is decided without its metadata
# A look at an unread window overlaps the previous one by this much: Immich writes the exif
# row and the asset's update in separate statements, and the two clocks may differ a little.
CHANGE_MARGIN = timedelta(minutes=2)


class StreamClient(Protocol):
    """The part of the Immich client that rules without people use."""

    def new_assets(
        self,
        after: datetime,
        before: datetime,
        asset_type: str | None = None,
        *,
        changed: tuple[datetime | None, datetime | None] = (None, None),
        readable_only: bool = True,
        with_people: bool = True,
    ) -> AsyncIterator[tuple[Asset, ...]]: ...

    async def count_assets(
        self, after: datetime, before: datetime, asset_type: str | None = None
    ) -> int: ...


class UnreadLedger(Protocol):
    """Where unread windows are kept (``Store``)."""

    def unread_windows(self) -> list[UnreadWindow]: ...

    def open_unread_window(
        self,
        created: tuple[datetime, datetime],
        changed_since: datetime,
        opened_at: datetime,
        seen: Sequence[str],
        kind: str = SETTLED,
    ) -> None: ...

    def unread_seen(self, window_id: int) -> set[str]: ...

    def update_unread_window(
        self, window_id: int, changed_since: datetime, seen: Sequence[str]
    ) -> None: ...

    def close_unread_window(self, window_id: int) -> None: ...


@dataclass(frozen=True)
class StreamOutcome:
    examined: int  # assets decided by this poll
    waiting: int  # assets created in the new window that Immich had not read yet


@dataclass(frozen=True)
class StreamPass:
    """One poll's view of the rules without people."""

    client: StreamClient
    rules: tuple[CompiledRule, ...]
    asset_type: str | None  # the one type all the rules want, for Immich to filter on
    baselines: dict[str, datetime]
    on_page: Callable[[list[Match]], None]
    kind: str = SETTLED  # the unread windows it opens

    async def _decide(
        self,
        pages: AsyncIterator[tuple[Asset, ...]],
        skip: set[str],
        keep: Callable[[Asset], bool] = lambda _: True,
    ) -> list[str]:
        """Match the assets of ``pages`` not in ``skip`` (and kept); their ids."""
        decided: list[str] = []
        async for page in pages:
            fresh = tuple(a for a in page if a.id not in skip and keep(a))
            skip.update(a.id for a in fresh)
            decided += [a.id for a in fresh]
            if fresh:
                self.on_page(matches_for(self.rules, fresh, self.baselines))
        return decided

    async def new_window(
        self,
        after: datetime,
        before: datetime,
        now: datetime,
        ledger: UnreadLedger | None,
    ) -> StreamOutcome:
        """Decide what was created in [after, before]; remember the window (in ``ledger``)
        when some of it is not readable yet."""
        total = await self.client.count_assets(after, before, self.asset_type)
        if not total:
            return StreamOutcome(0, 0)
        decided = await self._decide(self.client.new_assets(after, before, self.asset_type), set())
        waiting = max(0, total - len(decided))
        if waiting and ledger is not None:
            ledger.open_unread_window((after, before), now - CHANGE_MARGIN, now, decided, self.kind)
            if self.kind == EAGER:  # the settled pass says it once, as before
                return StreamOutcome(len(decided), waiting)
            log.info(
                "%d of %s created up to %s UTC without metadata yet (Immich has not read "
                "the files: an external library, or a job backlog); rules without people "
                "decide them once it arrives",
                waiting,
                count(total, "new asset"),
                f"{before:%H:%M:%S}",
            )
        return StreamOutcome(len(decided), waiting)

    async def unread_window(
        self,
        window: UnreadWindow,
        now: datetime,
        settle: timedelta,
        ledger: UnreadLedger,
    ) -> int:
        """Look at one unread window again; returns how many assets it decided."""
        created = (window.created_after, window.created_before)
        seen = ledger.unread_seen(window.id)
        if now - window.opened_at >= METADATA_WAIT:
            everything = self.client.new_assets(*created, self.asset_type, readable_only=False)
            decided = await self._decide(everything, seen)
            ledger.close_unread_window(window.id)
            if decided:
                log.warning(
                    "%s created up to %s UTC still had no metadata after %s; decided "
                    "without it (the file's date, no place, no people)",
                    count(len(decided), "asset"),
                    f"{window.created_before:%Y-%m-%d %H:%M:%S}",
                    _hours(METADATA_WAIT),
                )
            return len(decided)
        # Faces come after the metadata: an exclusion waits until the asset stopped changing.
        excludes = any(rule.none for rule in self.rules)
        settled = now - settle if excludes else None
        changed = self.client.new_assets(
            *created, self.asset_type, changed=(window.changed_since, settled)
        )
        decided = await self._decide(changed, seen)
        total = await self.client.count_assets(*created, self.asset_type)
        if len(seen) >= total and await self._all_readable(created, seen, total):
            ledger.close_unread_window(window.id)
            log.debug("unread window by %s: every asset decided", window.created_before)
        else:
            next_look = (settled or now) - CHANGE_MARGIN
            ledger.update_unread_window(window.id, next_look, decided)
        return len(decided)

    async def _all_readable(
        self, created: tuple[datetime, datetime], seen: set[str], total: int
    ) -> bool:
        """Whether the window's readable assets now are all decided and all of it: a decided
        asset deleted since would otherwise hide one that is still unread."""
        readable: set[str] = set()
        async for page in self.client.new_assets(*created, self.asset_type, with_people=False):
            readable.update(a.id for a in page)
        return readable <= seen and len(readable) >= total


def _hours(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours} hours" if hours != 1 else "1 hour"
