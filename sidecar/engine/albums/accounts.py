"""Album rules across several Immich accounts: every account's albums listed as one, and each
album read through the first account that lists it (an album private to Mum is read with Mum's
key; one shared with Dad and Mum is read once). Two different albums of the same name are
refused with their ids, as they are within one account (``albums.resolve.resolve_album_refs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sidecar.engine.albums.watcher import AlbumClient
from sidecar.immich.errors import ImmichClientError
from sidecar.immich.models import AlbumSummary, Asset, BucketAsset, ServerVersion


class AlbumsAcross:
    """Several accounts' album endpoints as one ``AlbumClient``."""

    def __init__(self, clients: Sequence[AlbumClient]) -> None:
        self._clients = tuple(clients)
        self._reader: dict[str, AlbumClient] = {}  # album id -> the first account listing it

    @property
    def server_version(self) -> ServerVersion | None:
        return self._clients[0].server_version

    async def album_summaries(self, *, shared: bool | None = None) -> list[AlbumSummary]:
        found: dict[str, AlbumSummary] = {}
        for client in self._clients:
            for album in await client.album_summaries(shared=shared):
                if album.id not in found:
                    found[album.id] = album
                    self._reader.setdefault(album.id, client)
        return list(found.values())

    def _for(self, album_id: str) -> AlbumClient:
        return self._reader.get(album_id, self._clients[0])

    async def album_buckets(self, album_id: str) -> dict[str, int]:
        return await self._for(album_id).album_buckets(album_id)

    async def album_bucket(self, album_id: str, time_bucket: str) -> list[BucketAsset]:
        return await self._for(album_id).album_bucket(album_id, time_bucket)

    async def album_assets_taken_between(
        self, album_id: str, taken_after: datetime, taken_before: datetime
    ) -> list[Asset]:
        return await self._for(album_id).album_assets_taken_between(
            album_id, taken_after, taken_before
        )

    async def asset(self, asset_id: str) -> Asset:
        """An asset through the first account that may read it."""
        last: ImmichClientError | None = None
        for client in self._clients:
            try:
                return await client.asset(asset_id)
            except ImmichClientError as err:
                last = err
        assert last is not None
        raise last
