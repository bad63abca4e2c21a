"""The running sink of each configured target, built through the registry and swapped on a
config reload."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping

from sidecar.config.model import Settings, TargetConfig
from sidecar.targets.base import Sink, SinkContext
from sidecar.targets.registry import kind_of


class SinkSet(Mapping[str, Sink]):
    """One sink per target. ``context_for`` gives what the kinds build their sinks from (it
    is asked at each build: the bot may have logged in since)."""

    def __init__(self, context_for: Callable[[Settings], SinkContext]) -> None:
        self._context_for = context_for
        self._sinks: dict[str, Sink] = {}
        self._targets: Mapping[str, TargetConfig] = {}
        self._retired: set[asyncio.Task[None]] = set()  # sinks of changed targets, closing

    def __getitem__(self, name: str) -> Sink:
        return self._sinks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sinks)

    def __len__(self) -> int:
        return len(self._sinks)

    def build(self, settings: Settings) -> Mapping[str, Sink]:
        """The sinks of these settings' targets. A target unchanged since the last build keeps
        its sink (a send may be in flight on it); the sinks of the others close in the
        background."""
        context = self._context_for(settings)
        sinks: dict[str, Sink] = {}
        for name, target in settings.targets.items():
            if name in self._sinks and self._targets.get(name) == target:
                sinks[name] = self._sinks[name]
                continue
            sink = kind_of(target).build_sink(target, context)
            if sink is not None:
                sinks[name] = sink
        for name, sink in self._sinks.items():
            if sinks.get(name) is not sink:
                self._retired.add(asyncio.create_task(sink.close()))
        self._sinks, self._targets = sinks, settings.targets
        return sinks

    async def close(self) -> None:
        for sink in self._sinks.values():
            await sink.close()
        await asyncio.gather(*self._retired, return_exceptions=True)
