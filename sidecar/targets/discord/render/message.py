"""A rendered Discord message: content and embeds, or components (a components v2 gallery),
the files it attaches, who it may ping, and its nonce, as the create-message / execute-webhook
JSON wants them (pure).

Pictures and videos travel as attachments referenced by ``attachment://<file>``: an Immich URL
would need the API key and would not load for Discord users anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DISCORD_MAX_EMBEDS = 10
CONTENT_LIMIT = 2000
NONCE_LENGTH = 25  # Discord rejects longer nonces
IS_COMPONENTS_V2 = 1 << 15  # the message flag: layout components, no content or embeds
V2_TEXT_LIMIT = 4000  # characters of text across a components v2 message
MAX_COMPONENTS = 40  # components in a message, nested ones counted
GALLERY_LIMIT = 10  # items in a media gallery
# Discord's upload limit: the files of one message, for bots and webhooks in a server without
# boosts.
MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Thumbnail:
    """A picture of an asset, already fetched from Immich."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class Media:
    """What a gallery can show of one asset: its preview picture, and for a video its playable
    file when it is attached (``video``) or, when it is not, why (``refused``: e.g. "too large
    to attach: 212 MB")."""

    picture: Thumbnail | None = None
    video: Thumbnail | None = None
    refused: str | None = None

    @property
    def size(self) -> int:
        """The bytes this asset adds to a message: its video, else its picture."""
        shown = self.video or self.picture
        return len(shown.data) if shown is not None else 0


@dataclass(frozen=True)
class MessageFile:
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class RenderedMessage:
    content: str
    embeds: tuple[dict[str, Any], ...]
    files: tuple[MessageFile, ...]
    allowed_mentions: dict[str, Any]
    delivery_ids: tuple[int, ...]  # the deliveries this message carries
    nonce: str  # the same deliveries always give the same nonce (Discord de-duplicates on it)
    components: tuple[dict[str, Any], ...] = ()  # components v2 (a gallery), with ``flags``
    flags: int = 0
    link: str | None = None  # where its "Open" button goes (the embeds layout's bot buttons)

    @property
    def attachment_names(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files)

    @property
    def is_v2(self) -> bool:
        return bool(self.flags & IS_COMPONENTS_V2)

    @property
    def size(self) -> int:
        """The bytes of its files (what Discord's upload limit counts)."""
        return sum(len(f.data) for f in self.files)

    def payload(self) -> dict[str, Any]:
        """The JSON part of a create-message / execute-webhook request."""
        attachments = [
            {"id": index, "filename": name} for index, name in enumerate(self.attachment_names)
        ]
        if self.is_v2:
            return {
                "flags": self.flags,
                "components": list(self.components),
                "allowed_mentions": self.allowed_mentions,
                "attachments": attachments,
            }
        return {
            "content": self.content,
            "embeds": list(self.embeds),
            "allowed_mentions": self.allowed_mentions,
            "attachments": attachments,
        }


def allowed_mentions(role_ids: Sequence[int], user_ids: Sequence[int] = ()) -> dict[str, Any]:
    """Only the listed roles and users may be pinged: never @everyone, nor users or roles
    named in text."""
    return {
        "parse": [],
        "roles": list(role_ids),
        "users": list(user_ids),
        "replied_user": False,
    }


NO_MENTIONS: dict[str, Any] = allowed_mentions(())


def message_nonce(rule: str, target: str, delivery_ids: Sequence[int]) -> str:
    key = f"{rule}\x00{target}\x00{','.join(map(str, sorted(delivery_ids)))}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()[:NONCE_LENGTH]
