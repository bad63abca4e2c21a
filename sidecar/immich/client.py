"""The Immich API client: what the sidecar asks Immich, in its own words.

Works with Immich 2.x and 3.x and keeps every difference between them under
``sidecar.immich``: the client learns the server version once, and its intent-level methods
(``assets_of_people``, ``new_assets``) pick the form that version understands. The endpoints
themselves are mixed in from ``sidecar.immich.endpoints``, one module per family (assets,
search, albums, people, memories, the key, workflows, sharing: shared links and video
playback). Sending, retries, size caps, metrics and error mapping are the transport's
(``sidecar.immich.transport``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx

from sidecar.config.model import Secret
from sidecar.immich.endpoints.albums import AlbumEndpoints
from sidecar.immich.endpoints.assets import AssetEndpoints
from sidecar.immich.endpoints.keys import KeyEndpoints
from sidecar.immich.endpoints.memories import MemoryEndpoints
from sidecar.immich.endpoints.people import PeopleEndpoints
from sidecar.immich.endpoints.search import MAX_SEARCH_PAGES, SEARCH_PAGE_SIZE, SearchEndpoints
from sidecar.immich.endpoints.sharing import SharingEndpoints
from sidecar.immich.endpoints.workflows import WorkflowEndpoints
from sidecar.immich.models import Asset, ServerVersion
from sidecar.immich.transport import Transport, isoformat, require_dict, require_int
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)


class ImmichClient(
    AssetEndpoints,
    SearchEndpoints,
    AlbumEndpoints,
    PeopleEndpoints,
    MemoryEndpoints,
    KeyEndpoints,
    WorkflowEndpoints,
    SharingEndpoints,
):
    """Async client for the parts of the Immich API the sidecar uses: one transport, the
    server version, and the endpoint families mixed in above."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        metrics: Metrics,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        wait_initial: float = 0.5,
        wait_max: float = 10.0,
    ) -> None:
        self._io = Transport(
            base_url,
            api_key,
            metrics,
            timeout=timeout,
            max_attempts=max_attempts,
            max_retry_seconds=max_retry_seconds,
            transport=transport,
            wait_initial=wait_initial,
            wait_max=wait_max,
        )
        self._server_version: ServerVersion | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._io.aclose()

    @property
    def server_version(self) -> ServerVersion | None:
        """The version learnt by the last ``version()`` call, if any."""
        return self._server_version

    # -- the server version ---------------------------------------------------------------

    async def version(self) -> ServerVersion:
        """The server version (remembered: 2.x and 3.x differ in upload fields)."""

        def parse(data: Any) -> ServerVersion:
            body = require_dict(data, "body")
            return ServerVersion(
                major=require_int(body["major"], "major"),
                minor=require_int(body["minor"], "minor"),
                patch=require_int(body["patch"], "patch"),
            )

        self._server_version = await self._io.call_json(
            "GET", "/server/version", parse, authenticated=False
        )
        return self._server_version

    async def known_version(self) -> ServerVersion:
        """The server version, asked once and remembered."""
        return self._server_version or await self.version()

    # -- what a poll asks, whatever the version -------------------------------------------

    async def assets_of_people(
        self,
        person_ids: Iterable[str],
        since: datetime,
    ) -> AsyncIterator[tuple[Asset, ...]]:
        """Pages of timeline assets created at or after ``since`` showing at least one of the
        people, each asset once. Immich 3.2+ answers that in one search (``filter`` with
        ``personIds.any``); before, ``personIds`` means ALL listed people, so it is one search
        per person."""
        ids = sorted(set(person_ids))
        if not ids:
            return
        if (await self.known_version()).has_search_filter:
            query: dict[str, Any] = {
                "personIds": {"any": ids},
                "createdAt": {"gte": isoformat(since)},
                "visibility": {"eq": "timeline"},
            }
            async for page in self._cursor_pages(query):
                yield page
            return
        seen: set[str] = set()  # an asset showing two watched people comes back twice
        for person_id in ids:
            async for result in self.iter_search(created_after=since, person_ids=(person_id,)):
                fresh = tuple(a for a in result.assets if a.id not in seen)
                seen.update(a.id for a in fresh)
                if fresh:
                    yield fresh

    async def new_assets(
        self,
        after: datetime,
        before: datetime,
        asset_type: str | None = None,
        *,
        changed: tuple[datetime | None, datetime | None] = (None, None),
        readable_only: bool = True,
        with_people: bool = True,
    ) -> AsyncIterator[tuple[Asset, ...]]:
        """Pages of timeline assets created in [after, before] (of one type, when given) and,
        where ``changed`` bounds it, last changed in that range. ``readable_only``: only those
        whose files Immich has read (``withExif``); False also returns the others, without
        exif. ``with_people=False`` for a count by id (half the bytes)."""
        async for result in self.iter_search(
            created_after=after,
            created_before=before,
            asset_type=asset_type,
            with_people=with_people,
            with_exif=readable_only,
            updated_after=changed[0],
            updated_before=changed[1],
        ):
            yield result.assets

    async def _cursor_pages(self, query: Mapping[str, Any]) -> AsyncIterator[tuple[Asset, ...]]:
        cursor: str | None = None
        for _ in range(MAX_SEARCH_PAGES):
            result = await self.search_metadata_filter(
                filter=query, cursor=cursor, size=SEARCH_PAGE_SIZE
            )
            yield result.assets
            if not result.next_page:
                return
            cursor = result.next_page
        log.warning(
            "search stopped after %d pages; the rest waits for the next poll", MAX_SEARCH_PAGES
        )
