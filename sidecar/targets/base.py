"""What the engine hands to a sink: deliveries, and how a sink says that sending failed.

A delivery is one (rule, target, asset) row of the outbox. The dispatcher groups the due
deliveries of one target and rule into a batch and calls the target's sink once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sidecar.config.model import Batching
from sidecar.immich.models import Asset


@dataclass(frozen=True)
class AlbumRef:
    """The album an album rule's delivery was added to (for the message and its links)."""

    id: str
    name: str


@dataclass(frozen=True)
class PostRef:
    """What a scheduled post's delivery says around its picture: the message it belongs to
    (``group``: one message per group, e.g. a memory's year) and that message's words."""

    post: str  # the post's name
    kind: str  # memories, birthdays, digest
    occasion: str  # e.g. 2026-12-01: a post runs once per occasion
    group: str  # e.g. "2023" or a person's id
    text: str  # the headline, plain text (rendered escaped)
    link: str | None = None  # where "open in Immich" goes


@dataclass(frozen=True)
class Delivery:
    id: int  # outbox row id, unique and stable across restarts
    rule: str
    target: str
    asset: Asset  # the asset as it was when the delivery was queued (people inline)
    attempts: int = 0  # earlier failed attempts
    batch_key: str | None = None  # set once the delivery was put in a batch and sent
    album: AlbumRef | None = None  # album rules: the album the asset was added to
    post: PostRef | None = None  # scheduled posts: the message this picture belongs to
    held: bool = False  # waited for the end of quiet hours: goes out in one summary


@dataclass(frozen=True)
class Batch:
    """The due deliveries of one rule for one target, with that rule's presentation settings."""

    rule: str
    target: str
    deliveries: tuple[Delivery, ...]
    key: str = ""  # stable identity of this batch across retries and restarts
    mention_roles: tuple[int, ...] = ()
    batching: Batching = field(default_factory=Batching)


class DeliveryError(Exception):
    """Sending failed. ``reason`` is a short, low-cardinality label (for metrics and the store)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        # Deliveries of the batch that were accepted before the failure (a batch can take
        # several messages): they are marked sent, only the rest is retried.
        self.sent_ids: tuple[int, ...] = ()


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later (Discord down, rate limited, Immich thumbnail unavailable)."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (channel gone, missing permission, webhook deleted)."""


class Sink(Protocol):
    """Sends one batch of deliveries for one target and one rule.

    Returns normally when every delivery in the batch was accepted, raises
    ``TemporaryDeliveryError`` or ``PermanentDeliveryError`` otherwise (the whole batch then
    counts as failed; the dispatcher retries it or records it as a dead letter).
    """

    async def send(self, batch: Batch) -> None: ...

    async def close(self) -> None: ...
