"""Pure checks for /immich upload: who may upload where, size, type by content, file names."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

MAX_FILENAME_LENGTH = 200

# The extensions Immich accepts for each type we recognise; the first is the one we add.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image/jpeg": (".jpg", ".jpeg", ".jpe"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/heic": (".heic",),
    "image/heif": (".heif", ".hif"),
    "image/avif": (".avif",),
    "image/tiff": (".tif", ".tiff", ".dng", ".nef", ".cr2", ".arw", ".orf", ".rw2"),
    "video/mp4": (".mp4", ".m4v"),
    "video/quicktime": (".mov", ".qt"),
    "video/3gpp": (".3gp",),
    "video/webm": (".webm",),
    "video/x-matroska": (".mkv",),
    "video/x-msvideo": (".avi",),
}

_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis"}
_HEIF_BRANDS = {b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_QUICKTIME_BRANDS = {b"qt  "}
_3GP_PREFIX = b"3g"
_RESERVED = re.compile(r'[<>:"/\\|?*]')


def sniff_media_type(data: bytes) -> str | None:
    """The media type of a photo or video, from its first bytes (the name can lie)."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head[4:8] == b"ftyp":
        return _iso_media_type(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: WebM or Matroska
        return "video/webm" if b"webm" in data[:4096] else "video/x-matroska"
    return None


def _iso_media_type(brand: bytes) -> str | None:
    if brand in _HEIC_BRANDS:
        return "image/heic"
    if brand in _HEIF_BRANDS:
        return "image/heif"
    if brand in _AVIF_BRANDS:
        return "image/avif"
    if brand in _QUICKTIME_BRANDS:
        return "video/quicktime"
    if brand.startswith(_3GP_PREFIX):
        return "video/3gpp"
    if brand.isascii() and brand.strip():
        return "video/mp4"  # isom, iso2, mp41, mp42, avc1, M4V, dash, ...
    return None


def sanitise_filename(name: str, media_type: str | None = None) -> str:
    """A safe base name: no directories, no control characters, no reserved characters, a
    bounded length, and an extension that matches the content (Immich goes by extension)."""
    base = re.split(r"[/\\]", name)[-1]
    base = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp"))
    base = _RESERVED.sub("_", base).strip().lstrip(".").strip()
    if not base:
        base = "upload"
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    extension = f".{extension.lower()}" if extension else ""
    if media_type in EXTENSIONS and extension not in EXTENSIONS[media_type]:
        stem, extension = base, EXTENSIONS[media_type][0]
    stem = stem[: MAX_FILENAME_LENGTH - len(extension)] or "upload"
    return stem + extension


def size_refusal(size: int, max_mb: int) -> str | None:
    """Why a file of ``size`` bytes is refused, or None when it fits."""
    limit = max_mb * 1024 * 1024
    if size > limit:
        return f"too big ({size / 1024 / 1024:.1f} MB; the limit is {max_mb} MB)"
    return None


@dataclass(frozen=True)
class Named:
    """A Discord role or channel as the config may name it: by id or by name."""

    id: int
    name: str

    def matches(self, wanted: str) -> bool:
        wanted = wanted.strip().lstrip("#@")
        return wanted == str(self.id) or wanted.casefold() == self.name.casefold()


def upload_refusal(
    allowed_roles: Iterable[str],
    allowed_channels: Iterable[str],
    caller_roles: Iterable[Named],
    channel: Named | None,
) -> str | None:
    """Why this caller may not upload here, or None when allowed.

    Safe default: an empty ``allowed_roles`` lets NOBODY upload (uploading writes into
    someone's photo library, so it must be granted on purpose). An empty
    ``allowed_channels`` allows every channel the bot can see.
    """
    roles = [r for r in allowed_roles if r.strip()]
    channels = [c for c in allowed_channels if c.strip()]
    if not roles:
        return (
            "uploads are not open to anyone yet: an admin must list the roles that may "
            "upload in discord.commands.upload.allowed_roles"
        )
    caller_roles = list(caller_roles)
    if not any(role.matches(wanted) for role in caller_roles for wanted in roles):
        return "you do not have a role that may upload to Immich"
    if channels and (channel is None or not any(channel.matches(c) for c in channels)):
        return "uploads are not allowed in this channel"
    return None
