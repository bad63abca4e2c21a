"""``python -m tests.fakes.run_sidecar <immich-sidecar arguments>``: the real CLI, pointed at fakes.

The test hooks live here, not in the product: discord.py's REST base and default gateway are
pointed at the fake Discord named by ``FAKE_DISCORD_URL``, ``FAKE_DISPATCH_RETRY`` (two
numbers, "first,max" seconds) compresses the dispatcher's retry backoff so that a fault run
spanning minutes of Discord failures fits into a CI job, and ``FAKE_CRON_SECONDS`` (a cron
field for seconds, e.g. "*/2") makes the posts' five-field crons fire at those seconds of each
minute they name, so that an every-minute post is seen to run twice in seconds, not minutes.
Unset, the CLI runs unchanged.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import discord.gateway
import discord.http
import yarl

from sidecar.cli.main import main
from sidecar.config import cron
from sidecar.engine.dispatch import dispatcher as dispatch

DISCORD_URL_VAR = "FAKE_DISCORD_URL"
RETRY_VAR = "FAKE_DISPATCH_RETRY"
CRON_SECONDS_VAR = "FAKE_CRON_SECONDS"


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


def fire_crons_at_seconds(seconds: str) -> None:
    """Every trigger the product reads from a five-field cron (``cron.post_trigger``, the one
    reading of ``posts[].cron``, and the wall-clock twin it schedules by) also gets this seconds
    field; the five fields keep their meaning and their checks."""
    if not hasattr(cron, "CronTrigger"):  # the product reads crons elsewhere now: say so
        raise SystemExit("run_sidecar: sidecar.config.cron no longer reads crons")
    five_fields = cron.CronTrigger

    class AtSeconds(five_fields):  # type: ignore[misc,valid-type]  # apscheduler is untyped
        def __init__(self, **fields: Any) -> None:
            super().__init__(**{**fields, "second": seconds})

    cron.CronTrigger = AtSeconds


def run(argv: Sequence[str]) -> int:
    if base_url := os.environ.get(DISCORD_URL_VAR):
        point_discord_at(base_url)
    if spec := os.environ.get(RETRY_VAR):
        compress_retry_backoff(spec)
    if seconds := os.environ.get(CRON_SECONDS_VAR):
        fire_crons_at_seconds(seconds)
    return main(argv)


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
