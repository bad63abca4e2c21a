"""``python -m tests.fakes.run_sidecar <immich-sidecar arguments>``: the real CLI, pointed at fakes.

The test hooks live here, not in the product: discord.py's REST base and default gateway are
pointed at the fake Discord named by ``FAKE_DISCORD_URL``, and ``FAKE_DISPATCH_RETRY`` (two
numbers, "first,max" seconds) compresses the dispatcher's retry backoff so that a fault run
spanning minutes of Discord failures fits into a CI job. Unset, the CLI runs unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import discord.gateway
import discord.http
import yarl

from sidecar.cli.main import main
from sidecar.engine.dispatch import dispatcher as dispatch

DISCORD_URL_VAR = "FAKE_DISCORD_URL"
RETRY_VAR = "FAKE_DISPATCH_RETRY"


def point_discord_at(base_url: str) -> None:
    discord.http.Route.BASE = f"{base_url.rstrip('/')}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(
        base_url.replace("http://", "ws://", 1).rstrip("/") + "/gateway"
    )


def compress_retry_backoff(spec: str) -> None:
    first, cap = (float(part) for part in spec.split(","))
    for name, value in (("FIRST_RETRY_SECONDS", first), ("MAX_RETRY_SECONDS", cap)):
        if not hasattr(dispatch, name):  # renamed in the product: say so rather than run slow
            raise SystemExit(
                f"run_sidecar: sidecar.engine.dispatch.dispatcher has no {name} to shorten"
            )
        setattr(dispatch, name, value)


def run(argv: Sequence[str]) -> int:
    if base_url := os.environ.get(DISCORD_URL_VAR):
        point_discord_at(base_url)
    if spec := os.environ.get(RETRY_VAR):
        compress_retry_backoff(spec)
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
