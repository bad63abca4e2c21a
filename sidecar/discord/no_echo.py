"""Photos that came in through an ingest channel are not announced back into that channel.

The sinks of the bot channel targets that post into an ingest channel are wrapped: before a
batch is sent, the deliveries of assets the ingest recorded as coming from that very channel are
left out (the dispatcher then counts them as handled). Scheduled posts (memories, birthdays) are
not announcements of an arrival and pass. A webhook target cannot be told apart, as its channel
is not in the config.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from sidecar.config.model import Settings
from sidecar.ops.logging import log_fields
from sidecar.targets.base import Batch, SentMessages, Sink
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.wording import count

log = logging.getLogger(__name__)

Origin = Callable[[str], int | None]  # asset id -> the ingest channel it came through


class NoEchoSink:
    def __init__(self, inner: Sink, channel_id: int, origin: Origin) -> None:
        self._inner = inner
        self._channel_id = channel_id
        self._origin = origin

    async def send(self, batch: Batch) -> SentMessages | None:
        keep = tuple(
            d
            for d in batch.deliveries
            if d.post is not None or self._origin(d.asset.id) != self._channel_id
        )
        if len(keep) < len(batch.deliveries):
            log.info(
                "target %s: %s came in through this channel, not announced back",
                batch.target,
                count(len(batch.deliveries) - len(keep), "asset"),
                extra=log_fields(target=batch.target, rule=batch.rule),
            )
        if not keep:
            return None
        return await self._inner.send(replace(batch, deliveries=keep))

    async def close(self) -> None:
        """The SinkSet closes the sink inside."""


def without_echo(sinks: Mapping[str, Sink], settings: Settings, origin: Origin) -> dict[str, Sink]:
    """The sinks, those of bot channels that are also ingest channels wrapped."""
    channels = {c.channel_id for c in settings.discord.ingest}
    wrapped = dict(sinks)
    for name, target in settings.targets.items():
        if isinstance(target, ChannelTarget) and target.channel_id in channels and name in sinks:
            wrapped[name] = NoEchoSink(sinks[name], target.channel_id, origin)
    return wrapped
