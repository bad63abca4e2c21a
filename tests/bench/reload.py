"""(e) From writing a valid new config file (atomically, as an editor does) to the sidecar's
"config reloaded" log line."""

from __future__ import annotations

import asyncio
import textwrap
import time

from tests.bench.poll_cost import V2
from tests.bench.report import Figure, spread
from tests.bench.sidecar_process import deployed

LIMIT_S = 1.0
SAMPLES = 6


def rules_named(name: str) -> str:
    return textwrap.dedent(f"""\
        - name: {name}
          people: {{any: [Alice, Bob]}}
          targets: [stdout]
        """)


async def measure(version: tuple[int, int, int]) -> list[float]:
    samples = []
    async with deployed(version, rules_named("kids-0")) as (deployment, sidecar):
        await sidecar.wait_for_polls(1)
        for i in range(1, SAMPLES + 1):
            await asyncio.sleep(0.3)  # let the watcher settle between edits
            after = len(sidecar.stderr)
            started = time.monotonic()
            deployment.write(rules_named(f"kids-{i}"))
            samples.append(
                await sidecar.line_time(sidecar.stderr, "config reloaded", after) - started
            )
    return samples


async def run(section: str = "reload") -> list[Figure]:
    samples = await measure(V2)
    return [
        Figure(
            section,
            "immich 2.7.5: config written -> 'config reloaded' logged",
            spread(samples),
            f"<= {LIMIT_S:g} s (max)",
            max(samples) <= LIMIT_S,
        )
    ]
