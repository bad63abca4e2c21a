"""Whose the API key is and what it may do: ``GET /api-keys/me`` (its permissions) and
``GET /users/me`` (its user), part of ``ImmichClient``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sidecar.immich.models import ImmichUser
from sidecar.immich.permissions import FEATURES, permissions_for
from sidecar.immich.transport import ShapeError, Transport, require_dict, require_list

# Every permission some feature needs (sidecar.immich.permissions says which); the contract
# test checks each name against the specs' Permission enum.
REQUIRED_PERMISSIONS = permissions_for(FEATURES)


class KeyEndpoints:
    """API key and user endpoints of ``ImmichClient`` (which provides the transport)."""

    _io: Transport

    async def key_permissions(self) -> frozenset[str]:
        """The permissions of the API key (``all`` grants every one); a 401 for a bad key."""

        def parse(data: Any) -> frozenset[str]:
            perms = require_list(require_dict(data, "body")["permissions"], "permissions")
            return frozenset(str(p) for p in perms)

        return await self._io.call_json("GET", "/api-keys/me", parse)

    async def me(self) -> ImmichUser:
        """The user the API key belongs to (permission ``user.read``)."""

        def parse(data: Any) -> ImmichUser:
            body = require_dict(data, "body")
            if not isinstance(body.get("id"), str):
                raise ShapeError("the user has no id")
            return ImmichUser.from_dict(body)

        return await self._io.call_json("GET", "/users/me", parse)

    async def missing_permissions(self, required: Iterable[str]) -> list[str]:
        """The permissions in ``required`` that the API key lacks (``all`` grants every one)."""
        granted = await self.key_permissions()
        if "all" in granted:
            return []
        return list(dict.fromkeys(p for p in required if p not in granted))
