"""A real headless Chromium (Debian's ``chromium``) driven over the Chrome DevTools Protocol.

The fewest moving parts offline: Chromium itself and a websocket (aiohttp, already a
dependency) — no driver binary, no browser download, no extra Python package. Chromium starts
with a new empty profile and every background service off, so it makes no request but the
test's (the network here is closed).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
START_LIMIT = 30.0


def chromium_path() -> str | None:
    """Chromium's executable, or None when it is not installed."""
    found = shutil.which(CHROMIUM) if not os.path.isabs(CHROMIUM) else CHROMIUM
    return found if found and os.access(found, os.X_OK) else None


class Page:
    """One tab: commands by name (``await page.send("Page.navigate", url=...)``) and the
    events it reported, kept in order."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self._waiting:
                self._waiting.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)
                self._changed.set()

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._waiting[number] = answer
        await self._socket.send_json({"id": number, "method": method, "params": params})
        data = await asyncio.wait_for(answer, 30)
        if "error" in data:
            raise RuntimeError(f"{method}: {data['error']}")
        result: dict[str, Any] = data.get("result", {})
        return result

    async def wait_for(self, method: str, after: int = 0, limit: float = 20.0) -> dict[str, Any]:
        """The first event ``method`` at or after index ``after`` of ``events``."""
        deadline = asyncio.get_running_loop().time() + limit
        while True:
            for event in self.events[after:]:
                if event.get("method") == method:
                    return event
            self._changed.clear()
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"Chromium did not report {method} in {limit:g}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def load(self, url: str) -> dict[str, Any]:
        """Navigate and wait for the load event; the main document's response event."""
        mark = len(self.events)
        await self.send("Page.navigate", url=url)
        await self.wait_for("Page.loadEventFired", mark)
        return self.document_response(mark)

    def document_response(self, after: int = 0) -> dict[str, Any]:
        for event in self.events[after:]:
            params = event.get("params", {})
            if (
                event.get("method") == "Network.responseReceived"
                and params.get("type") == "Document"
            ):
                response: dict[str, Any] = params["response"]
                return response
        raise AssertionError("no document response recorded")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def screenshot(self, path: Path) -> int:
        data = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        raw = base64.b64decode(data["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        return len(raw)

    def console_errors(self, after: int = 0) -> list[str]:
        """Errors the page caused (from event ``after`` on): console errors, uncaught
        exceptions, failed loads and CSP violations (Chromium reports the last two as log
        entries)."""
        found = []
        for event in self.events[after:]:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args")))
            elif method == "Runtime.exceptionThrown":
                found.append(json.dumps(params.get("exceptionDetails")))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    async def close(self) -> None:
        await self._socket.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """A fresh Chromium with one blank tab, its events on (page, network, console, log)."""
    path = chromium_path()
    assert path is not None, "chromium is not installed"
    profile = tempfile.mkdtemp(prefix="sidecar-chromium-")
    proc = await asyncio.create_subprocess_exec(
        path,
        *FLAGS,
        f"--user-data-dir={profile}",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _devtools_port(Path(profile), proc)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            [tab] = [t for t in targets if t.get("type") == "page"][:1]
            socket = await http.ws_connect(tab["webSocketDebuggerUrl"], max_msg_size=0)
            page = Page(socket)
            try:
                for domain in ("Page", "Network", "Runtime", "Log"):
                    await page.send(f"{domain}.enable")
                yield page
            finally:
                await page.close()
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, proc: asyncio.subprocess.Process) -> int:
    """Chromium writes the port it picked into ``DevToolsActivePort`` in its profile."""
    marker = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + START_LIMIT
    while asyncio.get_running_loop().time() < deadline:
        if proc.returncode is not None:
            raise AssertionError(f"chromium exited ({proc.returncode}) at start")
        if marker.is_file() and (lines := marker.read_text().splitlines()):
            return int(lines[0])
        await asyncio.sleep(0.05)
    raise AssertionError(f"chromium did not open its DevTools port in {START_LIMIT:g}s")
