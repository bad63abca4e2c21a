"""How a target presents what it sends: its ``layout`` (a Discord gallery or today's embeds), its
videos (``video: {attach, max_mb}``) and where its links go (``links``, ``shared_links``), read
from the target's block of the config (pure).

Discord targets (bot channels, webhooks, spotted DMs) take all four keys; the JSON webhook takes
``links`` and ``shared_links``; the console none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar.config.durations import parse_duration
from sidecar.config.model import KeyPath

LAYOUTS = ("gallery", "embeds")
LINK_STYLES = ("immich", "app", "shared", "none")
DISCORD_KEYS = ("layout", "video", "links", "shared_links")
LINK_KEYS = ("links", "shared_links")
MIB = 1024 * 1024


@dataclass(frozen=True)
class VideoOptions:
    """``video:``: attach a video's playable file when it is at most ``max_mb`` (else its
    preview, a link and why)."""

    attach: bool = True
    max_mb: float = 8

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * MIB)


@dataclass(frozen=True)
class SharedLinkOptions:
    """``shared_links:``: how long each message's shared link lives, and what it allows."""

    expire: float = 30 * 86400.0  # seconds
    download: bool = False
    metadata: bool = False


@dataclass(frozen=True)
class Presentation:
    layout: str = "gallery"  # one of LAYOUTS
    video: VideoOptions = field(default_factory=VideoOptions)
    links: str = "immich"  # one of LINK_STYLES
    shared_links: SharedLinkOptions = field(default_factory=SharedLinkOptions)

    @property
    def gallery(self) -> bool:
        return self.layout == "gallery"


def read_presentation(spec: Mapping[str, Any]) -> Presentation:
    """The presentation a (schema-valid) target mapping asks for; defaults for what it omits."""
    video = spec.get("video") or {}
    shared = spec.get("shared_links") or {}
    defaults = SharedLinkOptions()
    return Presentation(
        layout=str(spec.get("layout", "gallery")),
        video=VideoOptions(
            attach=bool(video.get("attach", True)), max_mb=float(video.get("max_mb", 8))
        ),
        links=str(spec.get("links", "immich")),
        shared_links=SharedLinkOptions(
            expire=parse_duration(str(shared["expire"])) if "expire" in shared else defaults.expire,
            download=bool(shared.get("download", False)),
            metadata=bool(shared.get("metadata", False)),
        ),
    )


def presentation_problems(
    spec: Mapping[str, Any], data: Mapping[str, Any], allowed: tuple[str, ...]
) -> Iterable[tuple[KeyPath, str]]:
    """What the schema cannot say: keys this kind of target does not take, a shared link that
    would never expire, and shared links without an address family members can reach."""
    for key in DISCORD_KEYS:
        if key in spec and key not in allowed:
            yield (key,), _not_taken(key)
    shared = spec.get("shared_links")
    expire = shared.get("expire") if isinstance(shared, dict) else None
    if isinstance(expire, str):
        try:
            seconds = parse_duration(expire)
        except ValueError:
            seconds = 1.0  # the schema says what is wrong with it
        if seconds <= 0:
            yield ("shared_links", "expire"), "a shared link must expire: 30d keeps it a month"
    immich = data.get("immich")
    if (
        "links" in allowed
        and spec.get("links") == "shared"
        and not (isinstance(immich, dict) and immich.get("external_url"))
    ):
        yield (
            ("links",),
            "links: shared needs immich.external_url, the address where family members open "
            "Immich's shared links (e.g. https://photos.example.com)",
        )


def _not_taken(key: str) -> str:
    if key in LINK_KEYS:
        return f"{key} is for Discord targets and JSON webhooks (http); remove it here"
    return f"{key} is for Discord targets (channel_id, webhook_url, discord_dm); remove it here"
