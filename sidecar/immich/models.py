"""Immich domain values, built from API responses with ``from_dict``.

Only the fields the sidecar uses are kept; both the 2.x and the 3.x shapes parse (3.x drops
``faces`` from people on an asset, and ``deviceAssetId``/``deviceId`` from assets).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def is_immich_id(text: str) -> bool:
    """Immich ids (assets, people, albums) are UUIDs; anything else is a name."""
    return bool(_UUID.match(text))


def parse_time(value: str) -> datetime:
    """Parse an Immich ISO-8601 timestamp (``Z`` or an offset) into an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclass(frozen=True)
class PersonRef:
    """A person recognised on an asset."""

    id: str
    name: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonRef:
        return cls(id=str(data["id"]), name=str(data.get("name") or ""))


@dataclass(frozen=True)
class Asset:
    id: str
    type: str  # IMAGE, VIDEO, AUDIO, OTHER
    created_at: datetime  # when Immich received it (upload time)
    taken_at: datetime | None  # fileCreatedAt: when the photo was taken
    original_file_name: str
    visibility: str  # timeline, archive, hidden, locked
    is_trashed: bool
    people: tuple[PersonRef, ...]
    city: str | None = None
    country: str | None = None
    description: str | None = None
    # When Immich last changed the asset (metadata extraction and thumbnails move it); None
    # where the answer had none (a queued copy).
    updated_at: datetime | None = None
    has_exif: bool = True  # False: an answer without exifInfo (Immich has not read the file)
    owner_id: str = ""  # the Immich user whose asset it is ("" where the answer had none)
    unassigned_faces: int = 0  # faces detected but not (yet) anyone's (2.x lists them)

    @property
    def on_timeline(self) -> bool:
        """Visible on the owner's timeline: not archived, hidden, locked or trashed."""
        return self.visibility == "timeline" and not self.is_trashed

    @property
    def person_ids(self) -> frozenset[str]:
        return frozenset(p.id for p in self.people)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Asset:
        exif = data.get("exifInfo") or {}
        visibility = data.get("visibility")
        if visibility is None:  # very old servers only had isArchived
            visibility = "archive" if data.get("isArchived") else "timeline"
        taken = data.get("fileCreatedAt")
        updated = data.get("updatedAt")
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            created_at=parse_time(str(data["createdAt"])),
            taken_at=parse_time(str(taken)) if taken else None,
            original_file_name=str(data.get("originalFileName") or ""),
            visibility=str(visibility),
            is_trashed=bool(data.get("isTrashed", False)),
            people=tuple(PersonRef.from_dict(p) for p in data.get("people") or ()),
            city=exif.get("city") or None,
            country=exif.get("country") or None,
            description=exif.get("description") or None,
            updated_at=parse_time(str(updated)) if updated else None,
            has_exif=bool(data.get("exifInfo")),
            owner_id=str(data.get("ownerId") or ""),
            unassigned_faces=len(faces)
            if isinstance(faces := data.get("unassignedFaces"), list)
            else 0,
        )


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    is_hidden: bool = False
    birth_date: date | None = None  # ``birthDate``, YYYY-MM-DD or null

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Person:
        born = data.get("birthDate")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or ""),
            is_hidden=bool(data.get("isHidden", False)),
            birth_date=date.fromisoformat(str(born)[:10]) if born else None,
        )


@dataclass(frozen=True)
class Memory:
    """One "on this day" memory: the photos of one past year around today."""

    id: str
    year: int
    memory_at: datetime
    assets: tuple[Asset, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Memory:
        return cls(
            id=str(data["id"]),
            year=int(data["data"]["year"]),
            memory_at=parse_time(str(data["memoryAt"])),
            assets=tuple(Asset.from_dict(a) for a in data.get("assets") or ()),
        )


@dataclass(frozen=True)
class Album:
    id: str
    name: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Album:
        return cls(id=str(data["id"]), name=str(data.get("albumName") or ""))


@dataclass(frozen=True)
class ImmichUser:
    """The user an API key belongs to (``GET /api/users/me``)."""

    id: str
    name: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImmichUser:
        return cls(id=str(data["id"]), name=str(data.get("name") or data.get("email") or ""))


@dataclass(frozen=True)
class ServerVersion:
    major: int
    minor: int
    patch: int

    @property
    def breaks_ties(self) -> bool:
        """3.1 orders search results taken at the same moment by id (before, ties come in
        whatever order Postgres' plan gives, which may change between requests)."""
        return (self.major, self.minor) >= (3, 1)

    @property
    def has_search_filter(self) -> bool:
        """3.2 added ``filter`` (with ``personIds.any``) and ``cursor`` to search/metadata."""
        return (self.major, self.minor) >= (3, 2)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


@dataclass(frozen=True)
class SearchPage:
    assets: tuple[Asset, ...]
    next_page: str | None  # 2.x/3.x: page number as a string; 3.2+: also a cursor


@dataclass(frozen=True)
class UploadResult:
    id: str
    duplicate: bool


@dataclass(frozen=True)
class AlbumSummary:
    """An album as ``GET /api/albums`` lists it: what tells whether its members changed.

    ``updated_at`` moves when assets are added or removed (and on a rename);
    ``last_modified_asset`` is the newest ``updatedAt`` among its assets, which adding an
    untouched old photo does not move: it is compared, never relied on alone."""

    id: str
    name: str
    asset_count: int
    updated_at: str
    last_modified_asset: str | None
    shared: bool

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlbumSummary:
        count = data["assetCount"]
        if isinstance(count, bool) or not isinstance(count, int):
            raise TypeError("assetCount is not an integer")
        last = data.get("lastModifiedAssetTimestamp")
        return cls(
            id=str(data["id"]),
            name=str(data.get("albumName") or ""),
            asset_count=count,
            updated_at=str(data["updatedAt"]),
            last_modified_asset=str(last) if last else None,
            shared=bool(data.get("shared", False)),
        )


@dataclass(frozen=True)
class BucketAsset:
    """One asset of a ``GET /api/timeline/bucket`` answer (a row of its columns)."""

    id: str
    owner_id: str
    taken_at: datetime  # fileCreatedAt
    is_image: bool
    visibility: str
    is_trashed: bool

    @property
    def on_timeline(self) -> bool:
        return self.visibility == "timeline" and not self.is_trashed


@dataclass(frozen=True)
class SharedLink:
    """An Immich shared link: opened at ``EXTERNAL_URL/share/KEY`` by anyone who has it, without
    an account, until it expires."""

    id: str
    key: str
    expires_at: datetime | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SharedLink:
        expires = data.get("expiresAt")
        return cls(
            id=str(data["id"]),
            key=str(data["key"]),
            expires_at=parse_time(expires) if isinstance(expires, str) else None,
        )


@dataclass(frozen=True)
class VideoFile:
    """An asset's playable video as Immich serves it (transcoded where the server transcodes)."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class VideoTooLarge:
    """A playable video over the size asked for; ``size`` in bytes where Immich said it."""

    size: int | None
    limit: int
