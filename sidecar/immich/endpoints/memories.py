"""Immich's "on this day" memories (``GET /memories``), which the memories posts and
``/immich memories`` show (part of ``ImmichClient``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sidecar.immich.models import Memory, ServerVersion
from sidecar.immich.transport import Transport, require_list


class MemoryEndpoints:
    """Memory endpoints of ``ImmichClient`` (which provides the transport and the version)."""

    _io: Transport

    async def known_version(self) -> ServerVersion:
        raise NotImplementedError  # ImmichClient's: the version, asked once

    async def memories_on(self, day: date) -> list[Memory]:
        """Immich's "on this day" memories shown on ``day``. 3.x takes a plain date, 2.x a
        date-time (the start of that day, UTC)."""

        def parse(data: Any) -> list[Memory]:
            return [Memory.from_dict(m) for m in require_list(data, "body")]

        version = await self.known_version()
        when = day.isoformat() if version.major >= 3 else f"{day.isoformat()}T00:00:00.000Z"
        return await self._io.call_json(
            "GET", "/memories", parse, params={"for": when, "type": "on_this_day"}
        )
