"""The status page's HTTP listener (``ui.listen``): ``/`` (the page and its explain box),
``/api/status`` and ``/api/explain`` (JSON), the page's stylesheet and icon, and with
``pictures: true`` the thumbnails of the last deliveries. GET (and HEAD) only.

With a password every path asks for HTTP Basic (any user name; the password compared in
constant time). Every answer forbids other origins (``default-src 'self'``), framing and
caching of family data.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from sidecar.config.model import UiSettings
from sidecar.engine.explain.reader import ExplainError, asset_id_of
from sidecar.engine.explain.verdict import Explanation
from sidecar.immich.errors import ImmichError
from sidecar.ui.page import render_page

log = logging.getLogger(__name__)

CSP = "default-src 'self'"
REALM = 'Basic realm="immich-sidecar status", charset="UTF-8"'
MAX_ASSET_ARGUMENT = 300
_STATIC = {"style.css": "text/css", "icon.svg": "image/svg+xml"}

Data = Callable[[], dict[str, Any]]
Explain = Callable[[str], Awaitable[Explanation]]
Thumbnail = Callable[[str], Awaitable[tuple[bytes, str]]]


def password_matches(header: str | None, password: str) -> bool:
    """Whether an ``Authorization: Basic`` header carries the password (any user name)."""
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    _user, colon, given = decoded.partition(":")
    return bool(colon) and hmac.compare_digest(given.encode(), password.encode())


class StatusPageServer:
    """Serves the page on ``ui.host:ui.port`` (port 0 picks a free one)."""

    def __init__(self, ui: UiSettings, data: Data, explain: Explain, thumbnail: Thumbnail):
        self._ui = ui
        self._data = data
        self._explain = explain
        self._thumbnail = thumbnail
        self._runner: web.AppRunner | None = None

    @property
    def port(self) -> int:
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the status page is not started")
        return int(self._runner.addresses[0][1])

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._page)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/api/explain", self._explain_json)
        app.router.add_get("/static/{name}", self._static)
        if self._ui.pictures:
            app.router.add_get("/thumbnails/{asset_id}", self._picture)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._ui.host, self._ui.port).start()
        except OSError as exc:
            await runner.cleanup()
            raise OSError(
                f"cannot listen for the status page on {self._ui.host}:{self._ui.port}: "
                f"{exc.strerror or exc}"
            ) from None
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        password = self._ui.password
        if password is not None and not password_matches(
            request.headers.get("Authorization"), password.reveal()
        ):
            response: web.StreamResponse = web.Response(
                status=401, text="401: the status page needs its password\n"
            )
            response.headers["WWW-Authenticate"] = REALM
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = web.Response(status=exc.status, text=f"{exc.status}: {exc.reason}\n")
                if exc.status == 405:
                    response.headers["Allow"] = "GET, HEAD"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    async def _page(self, request: web.Request) -> web.Response:
        asset = request.query.get("asset", "").strip()[:MAX_ASSET_ARGUMENT]
        answer, problem = await self._answer(asset) if asset else (None, None)
        text = render_page(
            self._data(), asset=asset, answer=answer, problem=problem, pictures=self._ui.pictures
        )
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    async def _answer(self, asset: str) -> tuple[Explanation | None, str | None]:
        """The explain box: its answer, or what went wrong in one sentence."""
        try:
            return await self._explain(asset_id_of(asset)), None
        except ExplainError as err:
            return None, str(err)
        except ImmichError as err:
            return None, f"cannot read Immich: {err}"
        except Exception as err:  # the page must answer, with one line, not a traceback
            log.exception("explain on the status page failed")
            return None, f"explain failed: {type(err).__name__}"

    async def _status(self, request: web.Request) -> web.Response:
        return _json(self._data())

    async def _explain_json(self, request: web.Request) -> web.Response:
        asset = request.query.get("asset", "").strip()[:MAX_ASSET_ARGUMENT]
        answer, problem = await self._answer(asset)
        if answer is None:
            status = 400 if problem and not problem.startswith("cannot read Immich") else 502
            return _json({"error": problem}, status)
        return _json(answer.json())

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        body = resources.files("sidecar.ui").joinpath("static", name).read_bytes()
        response = web.Response(body=body, content_type=_STATIC[name])
        response.headers["Cache-Control"] = "max-age=300"
        return response

    async def _picture(self, request: web.Request) -> web.Response:
        """A thumbnail of one of the last deliveries (no other asset: not a way into Immich)."""
        asset_id = request.match_info["asset_id"]
        if asset_id not in {d["asset_id"] for d in self._data()["deliveries"]}:
            raise web.HTTPNotFound()
        try:
            body, content_type = await self._thumbnail(asset_id)
        except ImmichError:
            raise web.HTTPBadGateway() from None
        response = web.Response(body=body, content_type=content_type.split(";")[0])
        response.headers["Cache-Control"] = "private, max-age=300"
        return response


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, ensure_ascii=False), status=status, content_type="application/json"
    )
