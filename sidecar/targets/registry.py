"""Every target kind, in one place: the loader reads targets through it, the app builds sinks
through it, ``check-config`` and ``doctor`` describe and check targets through it.

Adding a kind: a module with its config dataclass and a ``TargetKind`` (see
``sidecar.targets.base``), its branch in ``$defs.target`` of ``sidecar/config.schema.json``,
and one line below.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.config.model import TargetConfig
from sidecar.targets.base import TargetKind
from sidecar.targets.console import ConsoleKind
from sidecar.targets.discord.channel import ChannelKind
from sidecar.targets.discord.dm import DmKind
from sidecar.targets.discord.webhook import WebhookKind
from sidecar.targets.http_webhook import HttpKind

KINDS: tuple[TargetKind[Any], ...] = (
    ChannelKind(),
    WebhookKind(),
    ConsoleKind(),
    HttpKind(),
    DmKind(),
)


def kind_for_spec(spec: Mapping[str, Any]) -> TargetKind[Any] | None:
    """The kind a (schema-valid) ``targets.NAME`` mapping asks for."""
    return next((kind for kind in KINDS if any(key in spec for key in kind.keys)), None)


def kind_of(target: TargetConfig) -> TargetKind[Any]:
    """The kind of a loaded target."""
    for kind in KINDS:
        if type(target) is kind.config_type:
            return kind
    raise LookupError(f"no target kind for {type(target).__name__}")
