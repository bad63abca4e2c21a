"""(d) A burst of 300 matching photos for one rule with a bot channel target: how many messages
reach the fake Discord, how many 429s it answered on the way, and how long it took.

The sidecar runs in-process (discord.py is pointed at the fake with ``patched()``); the fake
Discord rate-limits the first few message posts.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sidecar.app import Sidecar
from tests.bench.poll_cost import V2
from tests.bench.report import Figure
from tests.bench.sidecar_process import LIMIT
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

BURST = 300
RATE_LIMITED_POSTS = 3
RETRY_AFTER = 0.2  # seconds, as Discord's 429 body says
MESSAGES_PATH = rf"/channels/{fd.PHOTOS_CHANNEL}/messages"


def rules(batching: str) -> str:
    return textwrap.dedent("""\
        - name: kids
          people: {any: [Alice]}
          targets: [photos]
        """) + (f"  batching: {batching}\n" if batching else "")


async def _wait(condition: Callable[[], object], what: str) -> None:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > LIMIT:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def measure(batching: str) -> dict[str, float]:
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        with discord.patched(), tempfile.TemporaryDirectory() as tmp:
            async with FakeImmich(version=V2) as immich:
                return await _burst(discord, immich, Path(tmp), batching)
    finally:
        await discord.stop()


async def _burst(
    discord: fd.FakeDiscord, immich: FakeImmich, tmp: Path, batching: str
) -> dict[str, float]:
    alice = immich.add_person("Alice")
    config = tmp / "config.yaml"
    os.environ["IMMICH_API_KEY"] = immich.api_key
    os.environ["DISCORD_TOKEN"] = fd.TOKEN
    write_config(
        config,
        immich_url=immich.url,
        state=tmp / "state.db",
        rules=rules(batching),
        targets=f'photos: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}',
        metrics_port=free_port(),
        extra="discord:\n  token: ${DISCORD_TOKEN}\n",
    )
    sidecar = Sidecar(config, stdout=io.StringIO())
    await sidecar.start()
    try:

        def sent() -> float:
            return (
                sidecar.metrics.registry.get_sample_value(
                    "immich_sidecar_notifications_sent_total", {"rule": "kids", "target": "photos"}
                )
                or 0.0
            )

        await _wait(
            lambda: sidecar.metrics.registry.get_sample_value(
                "immich_sidecar_poll_runs_total", {"result": "success"}
            ),
            "a first poll",
        )
        discord.rate_limit("POST", MESSAGES_PATH, retry_after=RETRY_AFTER, times=RATE_LIMITED_POSTS)
        immich.reset_requests()
        started = time.monotonic()
        immich.add_assets_bulk(BURST, created_at=datetime.now(UTC), people=[alice])
        await _wait(lambda: sent() >= BURST, f"{BURST} deliveries")
        seconds = time.monotonic() - started
        await asyncio.sleep(2.5)  # more polls: nothing more may be sent
        posts = [r for r in discord.requests if r.method == "POST" and r.path == MESSAGES_PATH]
        messages = discord.messages_in(fd.PHOTOS_CHANNEL)
        embeds = sum(len(m.payload.get("embeds") or []) for m in messages)
        thumbnails = [r for r in immich.requests if r.path.endswith("/thumbnail")]
        retries = (
            sidecar.metrics.registry.get_sample_value("immich_sidecar_discord_retries_total") or 0
        )
        return {
            "messages": len(messages),
            "embeds": embeds,
            "posts": len(posts),
            "answered_429": len(posts) - len(messages),
            "retries_seen": retries,
            "seconds": seconds,
            "thumbnails": len(thumbnails),
            "sent": sent(),
        }
    finally:
        await sidecar.stop()


async def run(section: str = "discord") -> list[Figure]:
    figures = []
    for label, batching, expected in (
        ("default batching (summary_over 20)", "", 1),
        ("summary_over 1000, 10 per message", "{summary_over: 1000}", BURST // 10),
    ):
        got = await measure(batching)
        figures.append(
            Figure(
                section,
                f"{BURST} matching photos, bot target, {label}",
                f"{got['messages']:.0f} msgs ({got['embeds']:.0f} embeds), "
                f"{got['answered_429']:.0f} x 429 answered / {got['retries_seen']:.0f} retried, "
                f"{got['thumbnails']:.0f} thumbnails fetched, all sent in {got['seconds']:.2f} s",
                f"{expected} msgs, {BURST} sent",
                got["messages"] == expected and got["sent"] == BURST,
            )
        )
    return figures
