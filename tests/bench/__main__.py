"""Performance figures: ``python -m tests.bench`` (``make bench``); not part of the test run.

Everything runs against fakes on 127.0.0.1: the fake Immich (shaped like 2.7.5 and 3.2.0) and
the fake Discord. ``--only SECTION`` runs one section; the table says which section measured
each row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.bench import (
    account_cost,
    album_cost,
    discord_burst,
    gallery_cost,
    latency,
    memory,
    messages,
    poll_cost,
    push_latency,
    reload,
)
from tests.bench.report import Figure, table

SECTIONS: dict[str, Callable[[str], Awaitable[list[Figure]]]] = {
    "poll": poll_cost.run,  # (a) requests, bytes and wall time of one poll
    "memory": memory.run,  # (b) RSS of the sidecar process
    "latency": latency.run,  # (c) asset matchable -> console line
    "discord": discord_burst.run,  # (d) a 300-photo burst to the fake Discord
    "reload": reload.run,  # (e) config written -> reloaded
    "albums": album_cost.run,  # (f) what album rules add to a poll
    "push": push_latency.run,  # (g) upload -> message with push and fast polls
    "accounts": account_cost.run,  # (h) an idle poll with 1, 2 and 4 Immich accounts
    "gallery": gallery_cost.run,  # (i) one batch's messages, bytes and requests per layout
    "messages": messages.run,  # (j) rendering messages and checking templates, the catalogs
}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


async def main(sections: list[str]) -> list[Figure]:
    figures: list[Figure] = []
    for name in sections:
        started = time.monotonic()
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        figures += await SECTIONS[name](name)
        print(f"bench: {name} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument(
        "--only",
        choices=sorted(SECTIONS),
        action="append",
        help="run only this section (may be repeated)",
    )
    args = parser.parse_args(argv)
    sections = args.only or list(SECTIONS)
    started = time.monotonic()
    try:
        figures = asyncio.run(main(sections))
    except (RuntimeError, AssertionError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"bench failed: {first}", file=sys.stderr)
        return 1
    print(f"machine: {machine()}")
    print(table(figures))
    print(
        f"total: {time.monotonic() - started:.0f} s; "
        f"{sum(f.passed is False for f in figures)} target(s) missed"
    )
    return 1 if any(f.passed is False for f in figures) else 0


if __name__ == "__main__":
    raise SystemExit(cli())
