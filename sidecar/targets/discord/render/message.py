"""A rendered Discord message: content, embeds, the files it attaches, who it may ping, and its
nonce, as the create-message / execute-webhook JSON wants them (pure).

Pictures travel as attachments referenced by ``attachment://<file>``: an Immich URL would need
the API key and would not load for Discord users anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

DISCORD_MAX_EMBEDS = 10
CONTENT_LIMIT = 2000
NONCE_LENGTH = 25  # Discord rejects longer nonces


@dataclass(frozen=True)
class Thumbnail:
    """A picture of an asset, already fetched from Immich."""

    data: bytes
    content_type: str


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

    @property
    def attachment_names(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files)

    def payload(self) -> dict[str, Any]:
        """The JSON part of a create-message / execute-webhook request."""
        return {
            "content": self.content,
            "embeds": list(self.embeds),
            "allowed_mentions": self.allowed_mentions,
            "attachments": [
                {"id": index, "filename": name} for index, name in enumerate(self.attachment_names)
            ],
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
