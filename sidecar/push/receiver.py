"""``POST /hooks/immich``: the endpoint an Immich 3.x workflow's webhook step calls.

It trusts nothing in the body beyond "look at these asset ids now": the secret header is
compared in constant time, the body is capped, and anything but the shape Immich sends is
refused. Answers carry no reason (a status code, an empty body); the metric says which.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from sidecar.config.model import PushSettings
from sidecar.immich.models import is_immich_id
from sidecar.ops.metrics import Metrics

PATH = "/hooks/immich"
# Immich's body is about 1-2 KB (the asset with a 20-byte checksum as a Node Buffer); 64 KiB
# leaves room for long file names and future fields, and refuses anything bulky.
MAX_BODY_BYTES = 64 * 1024
TRIGGERS = frozenset({"AssetCreate", "AssetMetadataExtraction"})


@dataclass(frozen=True)
class PushEvent:
    trigger: str  # AssetCreate or AssetMetadataExtraction
    asset_id: str
    owner_id: str | None = None  # the uploader's Immich user id: whose key reads it first


def parse_push(body: Any) -> PushEvent | None:
    """The event in Immich's ``{"type": "AssetV1", "trigger": ..., "data": {"asset": {"id":
    ..., "ownerId": ...}}}``; None for any other shape (an owner that is not an id is left
    out: the asset is then read through each account in turn)."""
    if not isinstance(body, dict) or body.get("type") != "AssetV1":
        return None
    trigger = body.get("trigger")
    data = body.get("data")
    asset = data.get("asset") if isinstance(data, dict) else None
    asset_id = asset.get("id") if isinstance(asset, dict) else None
    if trigger not in TRIGGERS or not isinstance(asset_id, str) or not is_immich_id(asset_id):
        return None
    owner = asset.get("ownerId") if isinstance(asset, dict) else None
    owner_id = owner if isinstance(owner, str) and is_immich_id(owner) else None
    return PushEvent(str(trigger), asset_id, owner_id)


class PushReceiver:
    """Serves ``POST /hooks/immich`` on ``host:port`` (port 0 picks a free port) and hands each
    accepted event to ``offer`` (which must not block)."""

    def __init__(
        self, settings: PushSettings, metrics: Metrics, offer: Callable[[PushEvent], None]
    ) -> None:
        self._settings = settings
        self._secret = settings.secret.reveal().encode()
        self._metrics = metrics
        self._offer = offer
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the push endpoint is not started")
        for address in self._runner.addresses:
            return int(address[1])
        raise RuntimeError("the push endpoint has no listening socket")

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(PATH, self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = self._settings.host, self._settings.port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            reason = exc.strerror or exc
            raise OSError(f"cannot listen for pushes on {host}:{port}: {reason}") from None
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def _answer(self, status: int, result: str) -> web.Response:
        self._metrics.push_requests.labels(result=result).inc()
        return web.Response(status=status)

    async def _handle(self, request: web.Request) -> web.Response:
        given = request.headers.get(self._settings.header, "").encode()
        if not hmac.compare_digest(given, self._secret):
            return self._answer(401, "unauthorized")
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return self._answer(413, "too_large")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return self._answer(413, "too_large")
        try:
            event = parse_push(json.loads(raw))
        except (ValueError, RecursionError):
            event = None
        if event is None:
            return self._answer(400, "malformed")
        self._offer(event)
        return self._answer(202, "accepted")
