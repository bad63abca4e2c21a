"""(c) From an asset becoming matchable in Immich (uploaded with a known face, or a face
recognised later) to its notification line on the sidecar's stdout, polling every 2 s."""

from __future__ import annotations

import asyncio
import textwrap
import time
from datetime import UTC, datetime

from tests.bench.poll_cost import V2, V32
from tests.bench.report import Figure, spread
from tests.bench.sidecar_process import deployed

INTERVAL = 2.0
SAMPLES = 4  # of each kind, per version
RULES = textwrap.dedent("""\
    - name: alice
      people: {any: [Alice]}
      targets: [stdout]
    """)


async def measure(version: tuple[int, int, int]) -> tuple[list[float], list[float]]:
    uploads: list[float] = []
    recognitions: list[float] = []
    async with deployed(version, RULES, interval=f"{INTERVAL:g}s") as (deployment, sidecar):
        await sidecar.wait_for_polls(1)
        immich, alice = deployment.immich, deployment.people["Alice"]
        for i in range(SAMPLES):
            # Staggered, so the samples fall at different points of the poll interval.
            await asyncio.sleep(INTERVAL * i / SAMPLES)
            after = len(sidecar.stdout)
            started = time.monotonic()
            asset = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
            uploads.append(await sidecar.line_time(sidecar.stdout, asset, after) - started)
        for i in range(SAMPLES):
            asset = immich.add_asset(created_at=datetime.now(UTC), unrecognised_faces=1)
            await sidecar.wait_for_polls(1)  # seen once without anybody on it
            await asyncio.sleep(INTERVAL * i / SAMPLES)
            after = len(sidecar.stdout)
            started = time.monotonic()
            immich.recognise(asset, alice)
            recognitions.append(await sidecar.line_time(sidecar.stdout, asset, after) - started)
    return uploads, recognitions


async def run(section: str = "latency") -> list[Figure]:
    figures = []
    for version in (V2, V32):
        label = "immich " + ".".join(map(str, version))
        uploads, recognitions = await measure(version)
        figures.append(
            Figure(
                section,
                f"{label}: upload with a known face -> console line",
                spread(uploads),
                f"poll every {INTERVAL:g} s",
                None,
            )
        )
        figures.append(
            Figure(
                section,
                f"{label}: face recognised later -> console line",
                spread(recognitions),
                f"poll every {INTERVAL:g} s",
                None,
            )
        )
    return figures
