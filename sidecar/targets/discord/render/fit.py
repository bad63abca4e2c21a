"""A gallery draft split into messages that Discord takes: at most 10 pictures and 10 MiB of
files each (pure).

Pictures are previews already (never the full-size file); what still does not fit goes on into
the next message, in order. A file larger than a whole message is left out (its asset is still
named, with its link). The first message carries the draft's words and mentions, and the
deliveries it does not picture (a summary's or a post's others), so each delivery is marked sent
with exactly one message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.immich.models import Asset
from sidecar.targets.base import Delivery
from sidecar.targets.discord.render.batch import Draft
from sidecar.targets.discord.render.message import GALLERY_LIMIT, MESSAGE_BYTES, Media


@dataclass(frozen=True)
class Part:
    """One message of a draft: the deliveries it carries and the assets it pictures;
    ``number`` of ``count`` (1 of 1 when the draft fits one message)."""

    deliveries: tuple[Delivery, ...]
    shown: tuple[Asset, ...]
    number: int = 1
    count: int = 1

    @property
    def ids(self) -> tuple[int, ...]:
        return tuple(d.id for d in self.deliveries)

    @property
    def first(self) -> bool:
        return self.number == 1


def fit(draft: Draft, media: Mapping[str, Media], budget: int = MESSAGE_BYTES) -> list[Part]:
    """The messages ``draft`` becomes so that none carries more than ``budget`` bytes of files
    or more than 10 pictures."""
    groups: list[list[Asset]] = [[]]
    used = 0
    for asset in draft.shown:
        size = _size(media.get(asset.id), budget)
        if groups[-1] and (used + size > budget or len(groups[-1]) == GALLERY_LIMIT):
            groups.append([])
            used = 0
        groups[-1].append(asset)
        used += size
    by_asset = {d.asset.id: d for d in draft.deliveries}
    pictured = {a.id for a in draft.shown}
    rest = tuple(d for d in draft.deliveries if d.asset.id not in pictured)
    parts = []
    for number, group in enumerate(groups, start=1):
        carried = tuple(by_asset[a.id] for a in group if a.id in by_asset)
        parts.append(
            Part(
                deliveries=(rest + carried) if number == 1 else carried,
                shown=tuple(group),
                number=number,
                count=len(groups),
            )
        )
    return parts


def _size(media: Media | None, budget: int) -> int:
    size = media.size if media is not None else 0
    return 0 if size > budget else size  # left out when it is sent (see ``within``)


def within(media: Media | None, budget: int = MESSAGE_BYTES) -> Media | None:
    """The media of an asset as a message can carry it: a file larger than a whole message is
    dropped (a video falls back to its picture)."""
    if media is None:
        return None
    if media.video is not None and len(media.video.data) > budget:
        media = Media(media.picture, None, media.refused)
    if media.picture is not None and len(media.picture.data) > budget:
        media = Media(None, media.video, media.refused)
    return media
