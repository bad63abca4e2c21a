"""``immich-sidecar dry-run``: poll once and print what each rule would send and why.

Writes nothing to the state database and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from sidecar.clock import utc_now
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError
from sidecar.engine.accounts import Accounts
from sidecar.engine.albums.preview import AlbumDryRun, preview_albums
from sidecar.engine.planning import build_watch, resolve_account_rules
from sidecar.engine.rules.matching import Match, RuleResolutionError
from sidecar.engine.uploads.poller import Window, collect_matches
from sidecar.immich.errors import ImmichError
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.metrics import Metrics
from sidecar.targets.links import album_asset_link, asset_link
from sidecar.wording import count


def dry_run(config_path: Path, since_seconds: float, out: TextIO | None = None) -> int:
    """``immich-sidecar dry-run``: poll once and print what each rule would send and why.
    Writes nothing to the state database and sends nothing."""
    quiet_library_retry_hooks()
    return asyncio.run(_dry_run(config_path, since_seconds, out or sys.stdout))


async def _dry_run(config_path: Path, since_seconds: float, out: TextIO) -> int:
    try:
        settings = load_settings(config_path)
    except ConfigError as err:
        for problem in err.lines():
            print(problem, file=sys.stderr)
        return 2
    metrics = Metrics()
    async with contextlib.AsyncExitStack() as stack:
        accounts = await Accounts.open(settings, metrics, stack)
        client = accounts.first.client
        try:
            version = await client.version()
            resolved = await resolve_account_rules(accounts, settings)
            watch = build_watch(settings, resolved.first)
            now = utc_now()
            start = now - timedelta(seconds=since_seconds)
            window = Window(
                people_since=start, stream_after=start, stream_before=now, settled_before=now
            )
            found: list[Match] = []
            print(
                f"dry run against Immich {version}: assets created since "
                f"{start:%Y-%m-%d %H:%M} UTC; nothing is stored or sent",
                file=out,
            )
            if len(accounts) > 1:
                for line in resolved.where_found():
                    print(f"people: {line}", file=out)
            seen = 0
            for account in accounts:  # each account with its own people's ids
                own = build_watch(settings, resolved.by_account[account.name])
                collected = await collect_matches(account.client, own, window, {}, found.extend)
                seen += collected.examined
            # An asset reached through two accounts is delivered once (one outbox key).
            found = list({(m.rule.name, m.asset.id): m for m in found}.values())
            albums = await preview_albums(accounts.albums(), settings.state.path, watch.album_rules)
        except RuleResolutionError as err:
            for problem in err.lines():
                print(problem, file=sys.stderr)
            return 2
        except ImmichError as err:
            print(f"cannot query Immich: {err}", file=sys.stderr)
            return 1
    deliveries = 0
    for hit in found:
        targets = watch.targets_of(hit.rule.name)
        deliveries += len(targets)
        asset = hit.asset
        taken = f", taken {asset.taken_at:%Y-%m-%d %H:%M}" if asset.taken_at else ""
        print(
            f"{hit.rule.name} -> {', '.join(targets)}: {asset.original_file_name or asset.id} "
            f"({asset.type}{taken}) because {hit.explain()}",
            file=out,
        )
        print(f"    {asset_link(settings.immich.external_url, asset.id)}", file=out)
    upload_matches = len(found)
    for line, album_matches in albums.lines:
        print(line, file=out)
        for album, hit in album_matches:
            targets = watch.targets_of(hit.rule.name)
            deliveries += len(targets)
            found.append(hit)
            print(
                f"{hit.rule.name} -> {', '.join(targets)}: "
                f"{hit.asset.original_file_name or hit.asset.id} ({hit.asset.type}) added to "
                f"{album.name} because {hit.explain()}",
                file=out,
            )
            print(
                f"    {album_asset_link(settings.immich.external_url, album.id, hit.asset.id)}",
                file=out,
            )
    if collected.waiting:
        print(
            f"{count(collected.waiting, 'asset')} created in that time "
            f"{'has' if collected.waiting == 1 else 'have'} no metadata yet (Immich has not "
            "read the files: an external library, or a job backlog); rules without people "
            "decide them once it arrives",
            file=out,
        )
    print(summary_line(seen, upload_matches, albums, deliveries), file=out)
    return 0


def summary_line(seen: int, upload_matches: int, albums: AlbumDryRun, deliveries: int) -> str:
    """The dry run's last line. Album additions are counted apart from the uploads examined:
    "3 assets examined, 4 matches" would read as more matches than assets."""
    uploads = f"{count(seen, 'asset')} examined, {count(upload_matches, 'match', 'matches')}"
    would = f"{count(deliveries, 'delivery', 'deliveries')} would be sent"
    if not albums.lines:
        return f"{uploads}, {would}"
    album_matches = sum(len(matches) for _line, matches in albums.lines)
    return (
        f"new uploads: {uploads}; album additions: {count(albums.additions, 'asset')} not seen "
        f"before, {count(album_matches, 'match', 'matches')}; {would}"
    )
