"""Immich workflows for the fake Immich (``tests.fakes.fake_immich``), as a real 3.1.0 runs them.

- 3.x: ``POST /api/workflows`` ``{name, trigger, enabled, steps: [{method, config}]}``; the
  create answer shows ``"steps": []``, ``GET /api/workflows`` shows the steps. The webhook step
  ``immich-plugin-core#webhook`` POSTs ``{"type": "AssetV1", "trigger": ..., "data": {"asset":
  {...}}}`` with ``Content-Type: application/json``, ``User-Agent: immich-server/<version>`` and
  the configured header (no signature): ``AssetCreate`` at the upload with an almost empty
  ``exifInfo``, ``AssetMetadataExtraction`` about 20 ms later with ``dateTimeOriginal``, make
  and model. A workflow fires only for its owner's uploads; when the receiver is down or answers
  4xx/5xx Immich logs "Error executing workflow" and never retries.
- 3.x without its core plugin (``core_plugin=False``: an image without
  ``plugins/immich-plugin-core``, whose server logs "Failed to import plugin" at start, as a
  real 3.1.0 built that way does): ``GET /api/plugins`` lists no plugin, and a create or update
  naming a step of it answers ``400 {"message": "Unknown method immich-plugin-core#webhook"}``.
- 2.x (spec 2.7.3): workflows have ``triggerType`` (``AssetCreate``, ``PersonRecognized``),
  ``filters`` and ``actions`` naming a plugin action id; the core plugin (``GET /api/plugins``)
  has no webhook action, so a 2.x workflow never calls out.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from tests.fakes.fake_immich import FakeImmich

Json = Any
WEBHOOK = "immich-plugin-core#webhook"
TRIGGERS_V3 = ("AssetCreate", "AssetMetadataExtraction")
TRIGGERS_V2 = ("AssetCreate", "PersonRecognized")
METADATA_DELAY = 0.02  # seconds from the upload to AssetMetadataExtraction
PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("GET", "/api/workflows"): "workflow.read",
    ("POST", "/api/workflows"): "workflow.create",
    ("GET", "/api/workflows/{id}"): "workflow.read",
    ("PUT", "/api/workflows/{id}"): "workflow.update",
    ("DELETE", "/api/workflows/{id}"): "workflow.delete",
    ("GET", "/api/plugins"): "plugin.read",
}
# 2.x's core plugin: actions, none of them a webhook.
V2_CORE_ACTIONS = ("assetArchive", "assetFavorite", "assetAddToAlbum")


@dataclass(frozen=True)
class WebhookCall:
    """One call a workflow made: ``status`` None when the receiver could not be reached."""

    url: str
    trigger: str
    asset_id: str
    headers: dict[str, str]
    body: Json
    status: int | None
    at: datetime


class FakeWorkflows:
    def __init__(self, fake: FakeImmich, *, core_plugin: bool = True) -> None:
        self._fake = fake
        self.core_plugin = core_plugin  # False: a 3.x server that failed to import it
        self.workflows: dict[str, dict[str, Json]] = {}
        self.calls: list[WebhookCall] = []
        self.errors: list[str] = []  # what Immich would log ("Error executing workflow ...")
        self._tasks: set[asyncio.Task[None]] = set()
        self._core_plugin = str(uuid.uuid4())
        self._actions = {name: str(uuid.uuid4()) for name in V2_CORE_ACTIONS}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/workflows", self._list)
        app.router.add_post("/api/workflows", self._create)
        app.router.add_get("/api/workflows/{id}", self._get)
        app.router.add_put("/api/workflows/{id}", self._update)
        app.router.add_delete("/api/workflows/{id}", self._delete)
        app.router.add_get("/api/plugins", self._plugins)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- firing

    def uploaded(self, asset_id: str, owner: str) -> None:
        """An asset was uploaded by ``owner`` ("" is the key's user, who owns every workflow
        here): run the matching webhook steps, the metadata one ~20 ms later."""
        for trigger, delay in (("AssetCreate", 0.0), ("AssetMetadataExtraction", METADATA_DELAY)):
            self.fire(trigger, asset_id, owner, delay)

    def fire(self, trigger: str, asset_id: str, owner: str, delay: float = 0.0) -> None:
        """Run the webhook steps of the workflows on ``trigger`` for one asset (a library scan
        fires ``AssetCreate`` at the scan and ``AssetMetadataExtraction`` when it is read)."""
        if not self._fake.is_v3 or owner:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # driven outside the event loop: nothing can be sent
        for workflow in self.workflows.values():
            if not workflow["enabled"] or workflow["trigger"] != trigger:
                continue
            for step in workflow["steps"]:
                if step.get("method") == WEBHOOK and step.get("enabled", True):
                    loop.call_later(delay, self._spawn, dict(step["config"]), trigger, asset_id)

    def _spawn(self, config: dict[str, Json], trigger: str, asset_id: str) -> None:
        task = asyncio.ensure_future(self._call(config, trigger, asset_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, config: dict[str, Json], trigger: str, asset_id: str) -> None:
        major, minor, patch = self._fake.version
        headers = {"User-Agent": f"immich-server/{major}.{minor}.{patch}"}
        if config.get("headerName"):
            headers[str(config["headerName"])] = str(config.get("headerValue", ""))
        asset = self._asset(asset_id, trigger)
        body = {"type": "AssetV1", "trigger": trigger, "data": {"asset": asset}}
        url = str(config["url"])
        status: int | None = None
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.request(
                    str(config.get("method", "POST")), url, json=body, headers=headers
                ) as answer,
            ):
                status = answer.status
        except (aiohttp.ClientError, TimeoutError) as error:
            self.errors.append(f"Error executing workflow: {type(error).__name__}")
        self.calls.append(
            WebhookCall(url, trigger, asset_id, headers, body, status, datetime.now(UTC))
        )

    def _asset(self, asset_id: str, trigger: str) -> dict[str, Json]:
        full = self._fake.asset_json(asset_id)
        checksum = base64.b64decode(str(full["checksum"]))
        asset = {
            key: full[key]
            for key in (
                "id", "ownerId", "type", "createdAt", "updatedAt", "fileCreatedAt",
                "fileModifiedAt", "localDateTime", "originalFileName", "originalPath",
                "visibility", "isFavorite", "isOffline", "libraryId", "livePhotoVideoId",
            )
        }  # fmt: skip
        asset["checksum"] = {"type": "Buffer", "data": list(checksum)}
        exif: dict[str, Json] = {"assetId": asset_id, "fileSizeInByte": 123_456}
        if trigger == "AssetMetadataExtraction":
            exif |= {"dateTimeOriginal": full["fileCreatedAt"], "make": "Fake", "model": "Cam 1"}
        asset["exifInfo"] = exif
        return asset

    # -- endpoints

    def _shape(self, workflow: dict[str, Json], *, with_steps: bool = True) -> dict[str, Json]:
        if not self._fake.is_v3:
            return {
                "id": workflow["id"],
                "ownerId": self._fake.key_user_id,
                "name": workflow["name"],
                "description": workflow.get("description", ""),
                "triggerType": workflow["trigger"],
                "enabled": workflow["enabled"],
                "createdAt": workflow["createdAt"],
                "filters": [],
                "actions": [
                    {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{workflow['id']}/{order}")),
                     "workflowId": workflow["id"], "order": order,
                     "pluginActionId": action["pluginActionId"],
                     "actionConfig": action.get("actionConfig")}
                    for order, action in enumerate(workflow["actions"])
                ],
            }  # fmt: skip
        return {
            "id": workflow["id"],
            "name": workflow["name"],
            "description": workflow.get("description"),
            "trigger": workflow["trigger"],
            "enabled": workflow["enabled"],
            "createdAt": workflow["createdAt"],
            "updatedAt": workflow["updatedAt"],
            "steps": workflow["steps"] if with_steps else [],
        }

    def _error(self, status: int, message: str | list[str]) -> web.Response:
        return self._fake._error(status, message, str(uuid.uuid4()))

    async def _body(self, request: web.Request) -> dict[str, Json] | None:
        try:
            body = await request.json()
        except ValueError:
            return None
        return body if isinstance(body, dict) else None

    def _read(self, body: dict[str, Json], *, partial: bool) -> dict[str, Json] | list[str]:
        """The workflow fields of a create or update body, or the validation problems."""
        v3 = self._fake.is_v3
        trigger_key, triggers = ("trigger", TRIGGERS_V3) if v3 else ("triggerType", TRIGGERS_V2)
        problems: list[str] = []
        fields: dict[str, Json] = {}
        if trigger_key in body:
            if body[trigger_key] not in triggers:
                problems.append(f"{trigger_key} must be one of: {', '.join(triggers)}")
            fields["trigger"] = body[trigger_key]
        elif not partial:
            problems.append(f"{trigger_key} is required")
        for key in ("name", "description"):
            if key in body:
                fields[key] = body[key]
        if "enabled" in body:
            fields["enabled"] = bool(body["enabled"])
        if v3 and "steps" in body:
            steps = body["steps"]
            if not isinstance(steps, list) or not all(
                isinstance(s, dict) and isinstance(s.get("method"), str) for s in steps
            ):
                problems.append("steps must be a list of {method, config}")
            elif unknown := self._unknown_method(steps):
                return [f"Unknown method {unknown}"]
            else:
                fields["steps"] = [
                    {"method": s["method"], "config": s.get("config"), "enabled": True}
                    for s in steps
                ]
        if not v3:
            problems += self._read_v2_actions(body, fields, partial)
        return problems or fields

    def _unknown_method(self, steps: list[dict[str, Json]]) -> str | None:
        """The first step's method no loaded plugin has: without the core plugin, every one."""
        if self.core_plugin or not steps:
            return None
        return str(steps[0]["method"])

    def _read_v2_actions(
        self, body: dict[str, Json], fields: dict[str, Json], partial: bool
    ) -> list[str]:
        for key in ("name", "actions", "filters"):
            if key not in body and not partial:
                return [f"{key} is required"]
        actions = body.get("actions", [])
        known = set(self._actions.values())
        if not isinstance(actions, list) or any(
            not isinstance(a, dict) or a.get("pluginActionId") not in known for a in actions
        ):
            return ["actions must name actions of an installed plugin"]
        fields["actions"] = actions
        return []

    async def _list(self, request: web.Request) -> web.Response:
        return web.json_response([self._shape(w) for w in self.workflows.values()])

    def _refused(self, problems: list[str]) -> web.Response:
        """A 400: an unknown step method is said alone (not a validation list), as 3.1 does."""
        unknown = [p for p in problems if p.startswith("Unknown method ")]
        return self._error(400, unknown[0] if unknown else problems)

    async def _create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        if body is None:
            return self._error(400, ["body must be a JSON object"])
        fields = self._read(body, partial=False)
        if isinstance(fields, list):
            return self._refused(fields)
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        workflow: dict[str, Json] = {
            "id": str(uuid.uuid4()),
            "name": None,
            "enabled": True,
            "steps": [],
            "actions": [],
            "createdAt": now,
            "updatedAt": now,
            **fields,
        }
        self.workflows[workflow["id"]] = workflow
        return web.json_response(self._shape(workflow, with_steps=False), status=201)

    def _find(self, request: web.Request) -> dict[str, Json] | None:
        return self.workflows.get(request.match_info["id"])

    async def _get(self, request: web.Request) -> web.Response:
        workflow = self._find(request)
        if workflow is None:
            return self._error(400, "Not found or no workflow.read access")
        return web.json_response(self._shape(workflow))

    async def _update(self, request: web.Request) -> web.Response:
        workflow = self._find(request)
        if workflow is None:
            return self._error(400, "Not found or no workflow.update access")
        body = await self._body(request)
        if body is None:
            return self._error(400, ["body must be a JSON object"])
        fields = self._read(body, partial=True)
        if isinstance(fields, list):
            return self._refused(fields)
        workflow.update(fields)
        workflow["updatedAt"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return web.json_response(self._shape(workflow))

    async def _delete(self, request: web.Request) -> web.Response:
        if self.workflows.pop(request.match_info["id"], None) is None:
            return self._error(400, "Not found or no workflow.delete access")
        return web.Response(status=204)

    async def _plugins(self, request: web.Request) -> web.Response:
        if self._fake.is_v3 and not self.core_plugin:
            return web.json_response([])
        plugin: dict[str, Json] = {
            "id": self._core_plugin,
            "name": "immich-plugin-core" if self._fake.is_v3 else "immich-core",
            "title": "Immich core",
            "description": "Core workflow steps",
            "author": "Immich",
            "version": "1.0.0",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-01-01T00:00:00.000Z",
        }
        if self._fake.is_v3:
            plugin["methods"] = [
                {"key": WEBHOOK, "name": "webhook", "title": "Webhook", "types": ["AssetV1"],
                 "description": "POST the event to a URL", "hostFunctions": True, "uiHints": []}
            ]  # fmt: skip
        else:
            plugin["filters"] = []
            plugin["actions"] = [
                {"id": action_id, "pluginId": self._core_plugin, "methodName": name,
                 "title": name, "description": "", "schema": None, "supportedContexts": ["asset"]}
                for name, action_id in self._actions.items()
            ]  # fmt: skip
        return web.json_response([plugin])
