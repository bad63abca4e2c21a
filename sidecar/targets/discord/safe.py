"""What comes from users and Immich made safe to put in a Discord message: inert text (no
markdown, mention or channel link) and attachment file names built from asset ids (a picture
and a video of one asset differ by their extension). The bot's
replies and both Discord target kinds use these (pure)."""

from __future__ import annotations

import re

from discord.utils import escape_markdown, escape_mentions

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
}
# Discord turns "<@123>" and "<#123>" into mentions and links; a zero-width space stops that.
_MENTION_LIKE = re.compile(r"<(?=[@#])")


def safe_text(text: str) -> str:
    """User or Immich text made inert: no markdown, no mention, no channel link."""
    return _MENTION_LIKE.sub("<\u200b", escape_mentions(escape_markdown(text)))


def attachment_name(asset_id: str, content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "jpg")
    safe_id = re.sub(r"[^A-Za-z0-9-]", "", asset_id) or "asset"
    return f"{safe_id}.{extension}"
