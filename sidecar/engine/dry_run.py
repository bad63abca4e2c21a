"""``immich-sidecar dry-run``: poll once and print what each rule would send and why.

Writes nothing to the state database and sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from sidecar.clock import utc_now
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.engine.accounts import Accounts
from sidecar.engine.albums.preview import AlbumDryRun, preview_albums
from sidecar.engine.planning import build_watch, resolve_account_rules, rule_options
from sidecar.engine.preview import said_lines
from sidecar.engine.rules.matching import Match, RuleResolutionError
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.passes import Watch, Window, collect_matches
from sidecar.engine.uploads.poller import BASELINE_KEY
from sidecar.immich.errors import ImmichError
from sidecar.immich.models import Asset
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef, Batch, Delivery
from sidecar.targets.links import album_asset_link, asset_link
from sidecar.targets.registry import kind_of
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
        return _refused(err)
    try:
        found = await _poll_once(settings, since_seconds, out)
    except RuleResolutionError as err:
        return _refused(err)
    except ImmichError as err:
        print(f"cannot query Immich: {err}", file=sys.stderr)
        return 1
    _print_found(settings, found, out)
    return 0


def _refused(err: ConfigError | RuleResolutionError) -> int:
    for problem in err.lines():
        print(problem, file=sys.stderr)
    return 2


# What the state file says of a delivery the dry run found, in words; None: run would send it.
_KNOWN = {
    "sent": "already sent",
    "pending": "queued, not sent yet",
    "failed": "given up earlier (a dead letter)",
    "before": "created before the rule started watching",
}


@dataclass(frozen=True)
class Known:
    """What the state file already holds about deliveries: run sends none of these again."""

    states: Mapping[tuple[str, str, str], str]  # outbox state by (rule, target, asset id)
    baselines: Mapping[str, datetime]  # when each upload rule started watching
    started: bool  # run has polled with this state file (a rule it lacks is new to it)

    @classmethod
    def read(cls, path: Path, keys: Iterable[tuple[str, str, str]]) -> Known:
        """From the state file at ``path``, read only (nothing when there is none yet)."""
        store = Store.open_for_reading(path)
        try:
            return cls(
                store.delivery_states(keys),
                store.stored_baselines(),
                store.get_meta(BASELINE_KEY) is not None,
            )
        finally:
            store.close()

    def of(self, rule: str, target: str, asset: Asset, *, upload: bool) -> str | None:
        """Why run would not send this delivery (a ``_KNOWN`` key), or None."""
        state = self.states.get((rule, target, asset.id))
        if state is not None:
            return state
        if upload and self.started:  # a rule new to the state file starts at run's next poll
            since = self.baselines.get(rule)
            if since is None or asset.created_at < since:
                return "before"
        return None


@dataclass(frozen=True)
class Found:
    """What one dry run found: the matches of new uploads and of album additions."""

    watch: Watch  # the first account's: which targets each rule sends to
    uploads: list[Match]
    seen: int  # new uploads examined
    waiting: int  # new uploads Immich has not read yet (in the last account polled)
    albums: AlbumDryRun
    sends: tuple[str, ...] = ()  # what each target would send: layout, files, links
    known: Known = Known({}, {}, started=False)  # what the state file already has of them


async def _poll_once(settings: Settings, since_seconds: float, out: TextIO) -> Found:
    """Poll every account once over the last ``since_seconds``, as ``run`` would, and preview
    the watched albums; says first which Immich it asks and, with several accounts, where each
    person name was found."""
    async with contextlib.AsyncExitStack() as stack:
        accounts = await Accounts.open(settings, Metrics(), stack)
        version = await accounts.first.client.version()
        resolved = await resolve_account_rules(accounts, settings)
        watch = build_watch(settings, resolved.first)
        now = utc_now()
        start = now - timedelta(seconds=since_seconds)
        window = Window(
            people_since=start, stream_after=start, stream_before=now, settled_before=now
        )
        print(
            f"dry run against Immich {version}: assets created since "
            f"{start:%Y-%m-%d %H:%M} UTC; nothing is stored or sent",
            file=out,
        )
        if len(accounts) > 1 or resolved.aliased():
            for line in resolved.where_found():
                print(f"people: {line}", file=out)
        for note in resolved.ambiguities():
            print(f"people: {note}", file=out)
        found: list[Match] = []
        seen = waiting = 0
        for account in accounts:  # each account with its own people's ids
            own = build_watch(settings, resolved.by_account[account.name])
            collected = await collect_matches(account.client, own, window, {}, found.extend)
            seen += collected.examined
            waiting = collected.waiting
        albums = await preview_albums(accounts.albums(), settings.state.path, watch.album_rules)
        # An asset reached through two accounts is delivered once (one outbox key).
        uploads = list({(m.rule.name, m.asset.id): m for m in found}.values())
        matches: list[tuple[Match, AlbumRef | None]] = [(m, None) for m in uploads]
        matches += [(hit, album) for _line, hits in albums.lines for album, hit in hits]
        known = Known.read(settings.state.path, delivery_keys(watch, matches))
        sends = await _what_targets_send(settings, watch, matches, accounts, known)
    return Found(watch, uploads, seen, waiting, albums, tuple(sends), known)


def delivery_keys(
    watch: Watch, matches: list[tuple[Match, AlbumRef | None]]
) -> list[tuple[str, str, str]]:
    """(rule, target, asset id) of every delivery the matches make: the outbox's key."""
    return [
        (hit.rule.name, target, hit.asset.id)
        for hit, _album in matches
        for target in watch.targets_of(hit.rule.name)
    ]


async def _what_targets_send(
    settings: Settings,
    watch: Watch,
    matches: list[tuple[Match, AlbumRef | None]],
    accounts: Accounts,
    known: Known,
) -> list[str]:
    """Each target's batch of each rule, as its kind describes it (the layout, the files and
    their sizes, the links it would make), of the deliveries the state file does not have yet;
    nothing is made or sent."""
    grouped: dict[tuple[str, str, str | None], list[Delivery]] = {}
    for hit, album in matches:
        for target in watch.targets_of(hit.rule.name):
            if known.of(hit.rule.name, target, hit.asset, upload=album is None) is not None:
                continue
            key = (target, hit.rule.name, album.id if album is not None else None)
            deliveries = grouped.setdefault(key, [])
            deliveries.append(
                Delivery(len(deliveries) + 1, hit.rule.name, target, hit.asset, album=album)
            )
    options = rule_options(settings)
    lines: list[str] = []
    for (target, rule, _album), deliveries in grouped.items():
        config = settings.targets[target]
        batch = Batch(
            rule,
            target,
            tuple(deliveries),
            batching=options(rule).batching,
            mention_roles=options(rule).mention_roles,
        )
        lines += await kind_of(config).describe(config, batch, accounts)
    return lines


def _print_found(settings: Settings, found: Found, out: TextIO) -> None:
    """One line per match and the link to open it, then what the state file already has (said
    apart: run sends none of it again), what is left for later, and the summary."""
    external_url = settings.immich.external_url
    known = found.known
    tally: Counter[str] = Counter()
    apart: list[str] = []

    def split(hit: Match, *, upload: bool) -> list[str]:
        """The targets run would send ``hit`` to; the others are said apart."""
        new = []
        for target in found.watch.targets_of(hit.rule.name):
            why = known.of(hit.rule.name, target, hit.asset, upload=upload)
            tally[why or "new"] += 1
            if why is None:
                new.append(target)
            else:
                name = hit.asset.original_file_name or hit.asset.id
                apart.append(f"{hit.rule.name} -> {target}: {name}: {_KNOWN[why]}")
        return new

    said: list[tuple[str, Asset, AlbumRef | None]] = []  # what run would send, for its texts
    for hit in found.uploads:
        if targets := split(hit, upload=True):
            said.append((hit.rule.name, hit.asset, None))
            asset = hit.asset
            taken = f", taken {asset.taken_at:%Y-%m-%d %H:%M}" if asset.taken_at else ""
            print(
                f"{hit.rule.name} -> {', '.join(targets)}: "
                f"{asset.original_file_name or asset.id} ({asset.type}{taken}) because "
                f"{hit.explain()}",
                file=out,
            )
            print(f"    {asset_link(external_url, asset.id)}", file=out)
    for line, album_matches in found.albums.lines:
        print(line, file=out)
        for album, hit in album_matches:
            if targets := split(hit, upload=False):
                said.append((hit.rule.name, hit.asset, album))
                print(
                    f"{hit.rule.name} -> {', '.join(targets)}: "
                    f"{hit.asset.original_file_name or hit.asset.id} ({hit.asset.type}) added "
                    f"to {album.name} because {hit.explain()}",
                    file=out,
                )
                print(f"    {album_asset_link(external_url, album.id, hit.asset.id)}", file=out)
    for line in [*found.sends, *said_lines(settings, said)]:
        print(line, file=out)
    if apart:
        print(f"in the state file {settings.state.path} already (run sends none again):", file=out)
        for line in apart:
            print(f"    {line}", file=out)
    if found.waiting:
        print(waiting_line(found.waiting), file=out)
    summary = summary_line(found.seen, len(found.uploads), found.albums, tally["new"])
    print(summary + known_line(tally), file=out)


def known_line(tally: Mapping[str, int]) -> str:
    """The summary's tail: how many deliveries the state file already has, by why."""
    parts = [
        f"{count(tally[why], 'delivery', 'deliveries')} {words}"
        for why, words in _KNOWN.items()
        if tally.get(why)
    ]
    return f"; {', '.join(parts)}" if parts else ""


def waiting_line(waiting: int) -> str:
    """New uploads the rules without people cannot decide yet."""
    return (
        f"{count(waiting, 'asset')} created in that time "
        f"{'has' if waiting == 1 else 'have'} no metadata yet (Immich has not "
        "read the files: an external library, or a job backlog); rules without people "
        "decide them once it arrives"
    )


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
