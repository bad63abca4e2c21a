"""The Immich endpoints behind push: workflows (3.x webhooks) and the cheap "anything new?"
probe that opens a fast-poll window (part of ``ImmichClient``).

Workflows (specs 2.7.3 and 3.0.3, and a real 3.1.0 server): 3.x takes ``{name, trigger,
enabled, steps: [{method, config}]}`` where the webhook step is ``immich-plugin-core#webhook``
with ``{url, method, headerName, headerValue}``; the create answer shows ``steps: []``, and
``GET /workflows`` shows the steps. 2.x has workflows (``triggerType``, ``actions`` naming a
plugin action id) but its core plugin has no webhook action, so nothing can push from 2.x.

A 3.x server whose image lacks ``plugins/immich-plugin-core`` (it logs "Failed to import
plugin" at start; seen on a real 3.1.0) lists no plugin in ``GET /plugins`` and answers a
workflow naming the webhook step with ``400 Unknown method immich-plugin-core#webhook``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidecar.immich.models import ServerVersion
from sidecar.immich.transport import Transport, require_dict, require_list

CORE_PLUGIN = "immich-plugin-core"
WEBHOOK_METHOD = f"{CORE_PLUGIN}#webhook"


@dataclass(frozen=True)
class Workflow:
    id: str
    name: str | None
    trigger: str
    enabled: bool
    steps: tuple[dict[str, Any], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Workflow:
        steps = data.get("steps") or []
        return cls(
            id=str(data["id"]),
            name=data.get("name"),
            trigger=str(data.get("trigger") or data.get("triggerType") or ""),
            enabled=bool(data.get("enabled", False)),
            steps=tuple(s for s in require_list(steps, "steps") if isinstance(s, dict)),
        )


class WorkflowEndpoints:
    """Workflow endpoints of ``ImmichClient`` (which provides the transport and the version)."""

    _io: Transport

    async def known_version(self) -> ServerVersion:
        raise NotImplementedError  # ImmichClient's: the version, asked once

    async def workflows(self) -> list[Workflow]:
        """The key's user's workflows (``workflow.read``)."""

        def parse(data: Any) -> list[Workflow]:
            items = require_list(data, "body")
            return [Workflow.from_dict(require_dict(w, "workflow")) for w in items]

        return await self._io.call_json("GET", "/workflows", parse)

    async def plugin_methods(self) -> frozenset[str]:
        """Every step the server's plugins offer, as ``plugin#method`` (``plugin.read``; 3.x)."""

        def parse(data: Any) -> frozenset[str]:
            methods: set[str] = set()
            for plugin in require_list(data, "body"):
                plugin = require_dict(plugin, "plugin")
                for method in require_list(plugin.get("methods") or [], "methods"):
                    method = require_dict(method, "method")
                    methods.add(f"{plugin.get('name')}#{method.get('name')}")
                    if isinstance(method.get("key"), str):
                        methods.add(method["key"])
            return frozenset(methods)

        return await self._io.call_json("GET", "/plugins", parse)

    async def create_workflow(self, body: dict[str, Any]) -> Workflow:
        return await self._io.call_json(
            "POST",
            "/workflows",
            lambda d: Workflow.from_dict(require_dict(d, "body")),
            json_body=body,
        )

    async def update_workflow(self, workflow_id: str, body: dict[str, Any]) -> Workflow:
        return await self._io.call_json(
            "PUT",
            "/workflows/{id}",
            lambda d: Workflow.from_dict(require_dict(d, "body")),
            path={"id": workflow_id},
            json_body=body,
        )
