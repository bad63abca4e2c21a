"""Small builders for domain values used across tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sidecar.immich.models import Asset, PersonRef

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


def make_asset(
    *,
    created: datetime | None = None,
    type: str = "IMAGE",
    people: tuple[PersonRef, ...] = (),
    visibility: str = "timeline",
    trashed: bool = False,
    name: str = "IMG_0001.jpg",
    asset_id: str | None = None,
) -> Asset:
    created = created or T0
    return Asset(
        id=asset_id or new_id(),
        type=type,
        created_at=created,
        taken_at=created - timedelta(minutes=5),
        original_file_name=name,
        visibility=visibility,
        is_trashed=trashed,
        people=people,
        city="Lyon",
        country="France",
    )
