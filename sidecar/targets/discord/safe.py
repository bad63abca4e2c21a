"""What comes from users and Immich made safe to put in a Discord message: inert text (no
markdown, mention or channel link; ``sidecar.messages.escape`` owns it) and attachment file
names built from asset ids (a picture and a video of one asset differ by their extension). The
bot's replies and both Discord target kinds use these (pure)."""

from __future__ import annotations

import re

from sidecar.messages.escape import discord_escape

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


def safe_text(text: str) -> str:
    """User or Immich text made inert: no markdown, no mention, no channel link."""
    return discord_escape(text)


def attachment_name(asset_id: str, content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "jpg")
    safe_id = re.sub(r"[^A-Za-z0-9-]", "", asset_id) or "asset"
    return f"{safe_id}.{extension}"
