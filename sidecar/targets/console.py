"""The ``console`` target: one JSON line per delivery (an asset, with every rule that sent it
to the target) on standard output.

Useful to try the sidecar without Discord, and to feed notifications to another program.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from sidecar.config.model import KeyPath, QuietHours, Secret
from sidecar.ops.checks import Check, passed
from sidecar.targets.base import (
    Batch,
    Delivery,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
    people_names,
)
from sidecar.targets.links import album_asset_link, album_link, app_link, asset_link
from sidecar.targets.presentation import presentation_problems
from sidecar.targets.words import json_text

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True)
class ConsoleTarget:
    name: str
    quiet_hours: QuietHours | None = None


def console_line(
    delivery: Delivery, external_url: str, words: Mapping[str, str] | None = None
) -> str:
    """One delivery as a JSON line; ``words``: its batch's ``text`` (and ``title`` and
    ``description`` where the config gives them), the message as the family would read it."""
    asset = delivery.asset
    album = delivery.album
    post = delivery.post
    extra: dict[str, object] = (
        {}
        if album is None
        else {
            "album": album.name,
            "album_id": album.id,
            "link": album_asset_link(external_url, album.id, asset.id),
            "album_link": album_link(external_url, album.id),
        }
    )
    return json.dumps(
        {
            "rule": delivery.rule,
            "rules": list(delivery.rules),  # every rule that sent the asset here
            "target": delivery.target,
            "asset_id": asset.id,
            "type": asset.type,
            "people": people_names(asset),
            "taken_at": asset.taken_at.isoformat() if asset.taken_at else None,
            "city": asset.city,
            "country": asset.country,
            "file_name": asset.original_file_name,
            "link": asset_link(external_url, asset.id),
            "app_link": app_link(asset.id),
            **extra,
            **(
                {}
                if post is None
                else {
                    "post": post.post,
                    "kind": post.kind,
                    "occasion": post.occasion,
                    "post_link": post.link,
                }
            ),
            **(words or {}),
        },
        ensure_ascii=False,
    )


class ConsoleSink:
    def __init__(self, external_url: str, stream: TextIO | None = None) -> None:
        self._external_url = external_url
        self._stream = stream

    async def send(self, batch: Batch) -> None:
        stream = self._stream or sys.stdout
        try:
            words = json_text(batch, self._external_url)
            stream.write(
                "".join(console_line(d, self._external_url, words) + "\n" for d in batch.deliveries)
            )
            stream.flush()
        except OSError as err:  # a closed pipe: keep the deliveries for later
            raise TemporaryDeliveryError("stdout_unavailable", str(err)) from None

    async def close(self) -> None:
        return None


class ConsoleKind(TargetKind[ConsoleTarget]):
    """``targets.NAME.console: true``."""

    keys = ("console",)
    label = ("console", "console")
    config_type = ConsoleTarget

    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> ConsoleTarget:
        return ConsoleTarget(name=name, quiet_hours=quiet)

    def problems(
        self, spec: Mapping[str, Any], data: Mapping[str, Any]
    ) -> Iterable[tuple[KeyPath, str]]:
        return presentation_problems(spec, data, ())

    def build_sink(self, target: ConsoleTarget, context: SinkContext) -> ConsoleSink:
        return ConsoleSink(context.external_url, context.stdout)

    async def check(self, target: ConsoleTarget, http: httpx.AsyncClient) -> Check:
        return passed(f"target {target.name!r} prints notifications on stdout")

    async def send_test(
        self, target: ConsoleTarget, text: str, http: httpx.AsyncClient, out: TextIO
    ) -> Check:
        print(json.dumps({"test": True, "target": target.name, "message": text}), file=out)
        return passed(f"test message printed for target {target.name!r}")
