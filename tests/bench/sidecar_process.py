"""The real ``immich-sidecar run`` process against a fake Immich served by the bench process,
with the arrival time of every output line and the process's memory from /proc."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

LIMIT = 30.0  # seconds any single wait of the bench may take


@dataclass(frozen=True)
class Memory:
    rss_mb: float  # VmRSS: resident now
    peak_mb: float  # VmHWM: the highest resident size since the process started


class TimedSidecar(SidecarProcess):
    """A SidecarProcess that also notes when each line arrived (time.monotonic())."""

    def __init__(self, config: Path, env: dict[str, str], metrics_port: int) -> None:
        super().__init__(config, env, metrics_port)
        self.arrivals: dict[int, list[float]] = {}  # id(stdout or stderr list) -> times

    async def _pump(self, stream: asyncio.StreamReader, into: list[str]) -> None:  # type: ignore[override]
        times = self.arrivals.setdefault(id(into), [])
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))
            times.append(time.monotonic())

    def memory(self) -> Memory:
        assert self._proc is not None
        fields: dict[str, float] = {}
        for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0]) / 1024  # kB -> MB
        return Memory(fields["VmRSS"], fields["VmHWM"])

    async def line_time(self, lines: list[str], text: str, after: int) -> float:
        """When the first line from index ``after`` containing ``text`` arrived."""
        await self.wait_until(
            lambda: any(text in line for line in lines[after:]),
            f"a line with {text!r}",
            limit=LIMIT,
        )
        times = self.arrivals[id(lines)]
        return next(times[i] for i in range(after, len(lines)) if text in lines[i])


class Deployment:
    """A config file, a state file and the fake Immich the sidecar talks to."""

    def __init__(self, immich: FakeImmich, folder: Path, *, rules: str, interval: str) -> None:
        self.immich = immich
        self.config = folder / "config" / "config.yaml"
        self.config.parent.mkdir()
        self.state = folder / "state.db"
        self.metrics_port = free_port()
        self.interval = interval
        self.people = {name: immich.add_person(name) for name in ("Alice", "Bob", "Carol")}
        self.write(rules)

    def write(self, rules: str) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            interval=self.interval,
            settle="1s",
            lookback="1h",
            metrics_port=self.metrics_port,
        )

    def sidecar(self) -> TimedSidecar:
        return TimedSidecar(self.config, {"IMMICH_API_KEY": self.immich.api_key}, self.metrics_port)


@contextlib.asynccontextmanager
async def deployed(
    version: tuple[int, int, int], rules: str, interval: str = "1s"
) -> AsyncIterator[tuple[Deployment, TimedSidecar]]:
    """A started sidecar process (stopped, and its files removed, afterwards)."""
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeImmich(version=version) as immich:
            deployment = Deployment(immich, Path(tmp), rules=rules, interval=interval)
            sidecar = deployment.sidecar()
            await sidecar.start()
            try:
                yield deployment, sidecar
            finally:
                code = await sidecar.stop()
                if code != 0:
                    raise RuntimeError(
                        f"the sidecar exited with {code}:\n" + "\n".join(sidecar.stderr[-20:])
                    )
