"""Immich shared links for the messages of targets with ``links: shared``: made once per message
through the first account allowed to share its assets, kept in the state before the message is
sent (a retry or a restart reuses the link: never a second one), pruned once expired.

Without ``sharedLink.create`` the feature is off (``engine.access`` says so once, and the
targets link into Immich meanwhile); a 403 while making one turns it off the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sidecar.clock import utc_now
from sidecar.engine.access import FeatureAccess, missing_permission
from sidecar.engine.store.database import Store
from sidecar.engine.store.outbox import StoredLink
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import (
    ImmichClientError,
    ImmichError,
    ImmichPermissionError,
)
from sidecar.immich.permissions import SHARED_LINKS
from sidecar.ops.logging import log_fields
from sidecar.targets.base import ShareRequest, TemporaryDeliveryError

log = logging.getLogger(__name__)


class SharedLinks:
    """The ``SharedLinkMaker`` the sinks use (``key_for``)."""

    def __init__(
        self,
        store: Store,
        clients: Callable[[], Sequence[ImmichClient]],
        access: FeatureAccess,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._clients = clients  # the accounts' clients, the first one first
        self._access = access
        self._clock = clock
        self._unshared: set[str] = set()  # targets told no account may share their assets

    async def key_for(self, request: ShareRequest) -> str | None:
        if not self._access.is_on(SHARED_LINKS):
            return None
        now = self._clock()
        self._store.prune_shared_links(now)
        kept = self._store.shared_link(request.target, request.message, now)
        if kept is not None:
            return kept.key
        made = await self._make(request, now)
        if made is None:
            return None
        self._store.keep_shared_link(request.target, request.message, made, now)
        log.info(
            "target %s: made Immich shared link %s for a message (expires %s)",
            request.target,
            made.link_id,
            f"{made.expires_at:%Y-%m-%d %H:%M} UTC" if made.expires_at else "never",
            extra=log_fields(target=request.target),
        )
        return made.key

    async def _make(self, request: ShareRequest, now: datetime) -> StoredLink | None:
        """A new link through the first account Immich lets share the message's assets."""
        refused: ImmichClientError | None = None
        for client in self._clients():
            try:
                link = await client.create_shared_link(
                    asset_ids=request.asset_ids,
                    album_id=request.album_id,
                    expires_at=now + timedelta(seconds=request.expire),
                    allow_download=request.download,
                    show_metadata=request.metadata,
                    description=request.description,
                )
            except ImmichPermissionError as err:
                permission = missing_permission(err.message) or SHARED_LINKS.permissions[0]
                self._access.refused(permission)  # says once that shared links are off
                return None
            except ImmichClientError as err:  # not this account's assets (400): the next one
                refused = err
                continue
            except ImmichError as err:
                raise TemporaryDeliveryError(
                    "immich_unavailable", f"could not make the shared link ({err})"
                ) from err
            return StoredLink(link.id, link.key, link.expires_at)
        if request.target not in self._unshared:
            self._unshared.add(request.target)
            log.warning(
                "target %s: no Immich account may share these assets (%s); the message links "
                "into Immich instead",
                request.target,
                refused,
                extra=log_fields(target=request.target),
            )
        return None
