"""What the engine hands to a sink, how a sink says that sending failed, and the one
interface every target kind implements (``TargetKind``; the kinds are listed in
``sidecar.targets.registry``).

A delivery is one (rule, target, asset) row of the outbox; the rows of several rules for the
same asset and target are folded into one delivery (one message there, naming every rule). The
dispatcher groups the due deliveries of one target and the same rules into a batch and calls
the target's sink once per batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TextIO, TypeVar

from sidecar.config.model import Batching, KeyPath, QuietHours, Secret, TargetConfig
from sidecar.immich.models import Asset, VideoFile, VideoTooLarge
from sidecar.messages.render import Words
from sidecar.ops.checks import Check
from sidecar.ops.metrics import Metrics

if TYPE_CHECKING:
    import discord
    import httpx


def people_names(asset: Asset) -> list[str]:
    """The named people of an asset, by name (ignoring case), for every target kind alike.
    Immich lists them in the order their faces were found, which differs from one photo (and
    one server version) to the next: the same pair would read "Bob, Alice" here and "Alice and
    Bob" there."""
    # Ties in case broken by the name itself: the order never depends on Immich's.
    return sorted(
        (p.name for p in asset.people if p.name.strip()), key=lambda name: (name.casefold(), name)
    )


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
    text: str  # the headline in English, plain text (for logs; each target says ``facts``)
    link: str | None = None  # where "open in Immich" goes
    # What the headline says, as values (year, years_ago, person, age, ...; see
    # sidecar.messages.render.post_facts): each target words it in its own language.
    facts: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


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
    # The rows of other rules for the same asset and target, sent in this one message:
    # (rule, outbox row id) each, folded in by the dispatcher.
    also: tuple[tuple[str, int], ...] = ()

    @property
    def rules(self) -> tuple[str, ...]:
        """Every rule this delivery stands for, its own first."""
        return (self.rule, *(rule for rule, _ in self.also))

    @property
    def row_ids(self) -> tuple[int, ...]:
        """The outbox rows this delivery stands for: its own, then the folded ones."""
        return (self.id, *(row for _, row in self.also))


@dataclass(frozen=True)
class MessageRef:
    """The Discord message that carried a delivery, as the send answered it (kept in the outbox,
    so ``explain`` and the status page can link to it)."""

    channel_id: str
    message_id: str
    guild_id: str | None = None  # None where the answer did not say (a webhook's)

    @property
    def link(self) -> str | None:
        """The message's link in Discord; None without the server's id (a channel message's
        link needs it)."""
        if self.guild_id is None:
            return None
        return f"https://discord.com/channels/{self.guild_id}/{self.channel_id}/{self.message_id}"


SentMessages = Mapping[int, MessageRef]  # delivery id -> the message that carried it


@dataclass(frozen=True)
class Batch:
    """The due deliveries of the same rules for one target, with the presentation settings of
    those rules (``rule``: the first of them, whose batching applies)."""

    rule: str
    target: str
    deliveries: tuple[Delivery, ...]
    key: str = ""  # stable identity of this batch across retries and restarts
    mention_roles: tuple[int, ...] = ()
    batching: Batching = field(default_factory=Batching)
    mention_members: bool = False  # the rule's mention_members
    # (person id, Discord user id) of the linked people in the batch, filled in by the sink
    member_mentions: tuple[tuple[str, int], ...] = ()
    words: Words = field(default_factory=Words)  # the language and templates of the target
    rules: tuple[str, ...] = ()  # every rule of the batch, ``rule`` first (empty: ``rule`` alone)

    @property
    def rule_names(self) -> tuple[str, ...]:
        return self.rules or (self.rule,)


class DeliveryError(Exception):
    """Sending failed. ``reason`` is a short, low-cardinality label (for metrics and the store)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        # Deliveries of the batch that were accepted before the failure (a batch can take
        # several messages): they are marked sent, only the rest is retried.
        self.sent_ids: tuple[int, ...] = ()
        self.messages: SentMessages = {}  # the messages of those, where known


class TemporaryDeliveryError(DeliveryError):
    """Worth retrying later (Discord down, rate limited, Immich thumbnail unavailable)."""

    def __init__(self, reason: str, detail: str = "", retry_after: float | None = None) -> None:
        super().__init__(reason, detail)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """Retrying cannot help (channel gone, missing permission, webhook deleted)."""


class Sink(Protocol):
    """Sends one batch of deliveries for one target and one rule.

    Returns normally when every delivery in the batch was accepted (with the message that
    carried each delivery, where the kind knows one: Discord's), raises
    ``TemporaryDeliveryError`` or ``PermanentDeliveryError`` otherwise (the whole batch then
    counts as failed; the dispatcher retries it or records it as a dead letter).
    """

    async def send(self, batch: Batch) -> SentMessages | None: ...

    async def close(self) -> None: ...


class Members(Protocol):
    """The people links, as sinks use them (``sidecar.engine.members.MemberDirectory``)."""

    def mentions(self, assets: Iterable[Asset]) -> tuple[tuple[str, int], ...]: ...

    def dm_recipients(self, rule: str, asset: Asset) -> tuple[int, ...]: ...

    def dms_sent(self, delivery_ids: Iterable[int]) -> set[tuple[int, int]]: ...

    def record_dms(self, user_id: int, delivery_ids: Iterable[int]) -> None: ...

    def forget_finished_dms(self) -> None: ...

    def close_dms(self, user_id: int, reason: str) -> None: ...


class ThumbnailSource(Protocol):
    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]: ...


class MediaSource(ThumbnailSource, Protocol):
    """Pictures and videos of assets (the Immich accounts)."""

    async def video_playback(self, asset_id: str, max_bytes: int) -> VideoFile | VideoTooLarge: ...


@dataclass(frozen=True)
class ShareRequest:
    """A message asking for its shared link: ``message`` names it (the same deliveries always
    name the same message, so a retry or a restart asks for the same link); an ``ALBUM`` link
    with ``album_id``, else an ``INDIVIDUAL`` one over ``asset_ids``."""

    target: str
    message: str
    asset_ids: tuple[str, ...]
    album_id: str | None
    expire: float  # seconds
    download: bool
    metadata: bool
    description: str


class SharedLinkMaker(Protocol):
    """Immich shared links for messages, kept in the state (``sidecar.engine.shared_links``)."""

    async def key_for(self, request: ShareRequest) -> str | None:
        """The key of the message's shared link, made at most once; None when none can be
        made (the key lacks ``sharedLink.create``): the message links into Immich instead.
        Raises TemporaryDeliveryError while Immich cannot be reached."""
        ...


@dataclass(frozen=True)
class SinkContext:
    """What a target kind may use to build its sink."""

    external_url: str  # base of the links to Immich
    thumbnails: MediaSource  # the Immich accounts: pictures and videos
    metrics: Metrics
    stdout: TextIO | None = None  # None: sys.stdout at each write
    bot: discord.Client | None = None  # the logged-in bot, when discord.token is set
    members: Members | None = None  # the people links (DMs, mentions)
    favourite_roles: tuple[str, ...] = ()  # who gets the Favourite button on bot posts
    shared_links: SharedLinkMaker | None = None  # for targets with links: shared


@dataclass(frozen=True)
class SecretKey:
    """A key of a target's config that holds a secret: never echoed in an error, read from
    ``<key>_file`` when that is given instead."""

    path: tuple[str, ...]  # inside the target, e.g. ("webhook_url",) or ("http", "secret")
    url: bool = False  # must hold an http:// or https:// URL


T = TypeVar("T", bound=TargetConfig)


class TargetKind(ABC, Generic[T]):
    """One kind of target: its config (read from ``targets.NAME``), its secrets, its sink,
    and how ``check-config`` and ``doctor`` speak of it. Its JSON Schema is the branch of
    ``$defs.target`` in ``sidecar/config.schema.json`` that requires one of ``keys``."""

    keys: ClassVar[tuple[str, ...]]  # a target with one of these keys is of this kind
    label: ClassVar[tuple[str, str]]  # singular and plural, for check-config's summary
    config_type: ClassVar[type]
    secrets: ClassVar[tuple[SecretKey, ...]] = ()

    @abstractmethod
    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> T:
        """The target's settings from its (schema-valid) mapping; ``secrets`` by the paths of
        ``self.secrets``, those the file sets."""

    def problems(
        self,
        spec: Mapping[str, Any],
        data: Mapping[str, Any],
    ) -> Iterable[tuple[KeyPath, str]]:
        """What the schema cannot say about this target (key path inside it, message);
        ``data`` is the whole document."""
        return ()

    @abstractmethod
    def build_sink(self, target: T, context: SinkContext) -> Sink | None:
        """The target's sink; None when it cannot have one now (a bot target without a bot)."""

    async def check(self, target: T, http: httpx.AsyncClient) -> Check | None:
        """``doctor``: whether the target can receive (None: checked elsewhere)."""
        return None

    async def send_test(
        self, target: T, text: str, http: httpx.AsyncClient, out: TextIO
    ) -> Check | None:
        """``doctor --send-test``: send ``text`` (None: sent elsewhere)."""
        return None

    async def describe(self, target: T, batch: Batch, source: MediaSource) -> list[str]:
        """``dry-run``: what the target would send for ``batch``, in lines (nothing is made or
        sent)."""
        many = len(batch.deliveries) != 1
        words = f"{len(batch.deliveries)} deliver{'ies' if many else 'y'}"
        return [f"target {batch.target}, rule {batch.rule}: {words}"]
