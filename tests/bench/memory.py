"""(b) Resident memory of the running sidecar process: idle, and after a poll over a look-back
window holding 10,000 new assets of which 1% show a watched person."""

from __future__ import annotations

import textwrap

from tests.bench.poll_cost import V2, V32
from tests.bench.report import Figure
from tests.bench.sidecar_process import LIMIT, Memory, deployed

IDLE_LIMIT_MB = 80.0
BURST_LIMIT_MB = 100.0
WINDOW = 10_000
MATCHING = WINDOW // 100

PEOPLE_ONLY = textwrap.dedent("""\
    - name: alice
      people: {any: [Alice]}
      targets: [stdout]
    """)
# A rule that needs nobody: the stream query downloads every new asset (after settle).
WITH_STREAM = PEOPLE_ONLY + textwrap.dedent("""\
    - name: no-carol
      people: {none: [Carol]}
      targets: [stdout]
    """)


async def measure(
    version: tuple[int, int, int], rules: str, rules_matching: int
) -> tuple[Memory, Memory]:
    """Memory when idle, and once the burst was delivered and polled again."""
    async with deployed(version, rules) as (deployment, sidecar):
        await sidecar.wait_for_polls(2)
        idle = sidecar.memory()
        immich = deployment.immich
        immich.add_assets_bulk(WINDOW - MATCHING, people=[deployment.people["Carol"]])
        immich.add_assets_bulk(MATCHING, people=[deployment.people["Alice"]])
        expected = MATCHING * rules_matching
        await sidecar.wait_until(
            lambda: len(sidecar.notifications()) >= expected,
            f"{expected} notifications",
            limit=LIMIT,
        )
        await sidecar.wait_for_polls(1)
        after = sidecar.memory()
        if len(sidecar.notifications()) != expected:
            raise RuntimeError(
                f"expected {expected} notifications, got {len(sidecar.notifications())}"
            )
        return idle, after


async def run(section: str = "memory") -> list[Figure]:
    figures = []
    for version in (V2, V32):
        label = "immich " + ".".join(map(str, version))
        idle, after = await measure(version, PEOPLE_ONLY, rules_matching=1)
        figures.append(
            Figure(
                section,
                f"{label}: idle RSS (after 2 polls)",
                f"{idle.rss_mb:.1f} MB (peak since start {idle.peak_mb:.1f} MB)",
                f"<= {IDLE_LIMIT_MB:g} MB",
                idle.rss_mb <= IDLE_LIMIT_MB,
            )
        )
        figures.append(
            Figure(
                section,
                f"{label}: peak RSS, 10,000 new (1% match), people rule",
                f"{after.peak_mb:.1f} MB (RSS after {after.rss_mb:.1f} MB)",
                f"<= {BURST_LIMIT_MB:g} MB",
                after.peak_mb <= BURST_LIMIT_MB,
            )
        )
        _, after = await measure(version, WITH_STREAM, rules_matching=2)
        figures.append(
            Figure(
                section,
                f"{label}: peak RSS, same + a rule needing nobody (all 10,000 fetched)",
                f"{after.peak_mb:.1f} MB (RSS after {after.rss_mb:.1f} MB)",
                f"<= {BURST_LIMIT_MB:g} MB",
                after.peak_mb <= BURST_LIMIT_MB,
            )
        )
    return figures
