"""One message per asset per target (pure): the outbox keeps a row per (rule, target, asset),
so that each rule decides an asset once; a target shows an asset once, whichever rules sent it.

Rows of several rules for the same asset, target and album are folded into one delivery that
names every rule (the first queued leads; its batch carries the rules' mentions). Only rows of
the same batch fold: a batch keeps the members it was first sent with, so a resend after a
crash renders the same messages. A row that comes later, once the asset is already in the
target (or on its way in a batch formed earlier), is not sent again: the dispatcher closes it
with that batch (``Repeat``) or lets it wait for that batch's outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sidecar.engine.store.outbox import Earlier, MessageKey
from sidecar.targets.base import Delivery


def message_key(delivery: Delivery) -> MessageKey | None:
    """What makes one message: the target, the asset and the album it was added to. None for
    a scheduled post's picture: a post's message is its own."""
    if delivery.post is not None:
        return None
    album = delivery.album.id if delivery.album is not None else None
    return (delivery.target, delivery.asset.id, album)


def fold(deliveries: Iterable[Delivery]) -> list[Delivery]:
    """The deliveries with the rows of one asset, target, album and batch folded into the first
    of them, in queue order."""
    leads: dict[tuple[MessageKey, str | None], int] = {}
    folded: list[Delivery] = []
    for delivery in deliveries:
        key = message_key(delivery)
        if key is None:
            folded.append(delivery)
            continue
        at = leads.setdefault((key, delivery.batch_key), len(folded))
        if at == len(folded):
            folded.append(delivery)
            continue
        lead = folded[at]
        folded[at] = replace(
            lead,
            also=(*lead.also, (delivery.rule, delivery.id), *delivery.also),
            held=lead.held or delivery.held,
        )
    return folded


@dataclass(frozen=True)
class Repeats:
    """New rows whose asset is already in the target (``closed``: row -> the batch that sent
    it), rows that wait for an earlier batch (``waiting``: row -> when it is tried next), and
    the rest, to send."""

    closed: Mapping[int, Earlier]
    waiting: Mapping[int, datetime]
    rest: tuple[Delivery, ...]


def repeats(due: Iterable[Delivery], earlier: Mapping[MessageKey, Earlier]) -> Repeats:
    """Sort the due rows: a row not in a batch yet whose message an earlier batch sent is a
    repeat; one whose message an earlier batch is still trying to send waits for it."""
    closed: dict[int, Earlier] = {}
    waiting: dict[int, datetime] = {}
    rest: list[Delivery] = []
    for delivery in due:
        key = message_key(delivery)
        found = earlier.get(key) if key is not None and delivery.batch_key is None else None
        if found is not None and found.sent_key is not None:
            closed[delivery.id] = found
        elif found is not None and found.retry_at is not None:
            waiting[delivery.id] = found.retry_at
        else:
            rest.append(delivery)
    return Repeats(closed, waiting, tuple(rest))
