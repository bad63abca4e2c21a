"""A JSON webhook receiver on 127.0.0.1 (what n8n or Home Assistant would be): records every
request and answers each path with scripted statuses (then 200)."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._answers: dict[str, deque[tuple[int, dict[str, str]]]] = defaultdict(deque)
        self._delays: dict[str, float] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    def answer(self, path: str, *statuses: int, headers: dict[str, str] | None = None) -> None:
        """The next requests to ``path`` get these statuses, in order; then 200."""
        self._answers[path].extend((status, headers or {}) for status in statuses)

    def delay(self, path: str, seconds: float) -> None:
        self._delays[path] = seconds

    def to(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body))
        if request.path in self._delays:
            await asyncio.sleep(self._delays[request.path])
        queue = self._answers[request.path]
        status, headers = queue.popleft() if queue else (200, {})
        if 300 <= status < 400:
            headers = {"Location": f"{self.url}/elsewhere", **headers}
        payload: Any = {"ok": status < 300}
        return web.json_response(payload, status=status, headers=headers)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
