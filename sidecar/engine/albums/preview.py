"""The dry run's album part: what the next poll would find in each watched album, compared with
the sidecar's state file, which is read and never written. Immich keeps no time of addition,
so "new" means not in the state file, and ``--since`` does not apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sidecar.engine.albums.watcher import (
    AlbumClient,
    AlbumWatcher,
    album_changed,
    album_matches,
    watched_ids,
)
from sidecar.engine.rules.matching import CompiledRule, Match
from sidecar.engine.store.database import Store
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef
from sidecar.wording import count


@dataclass(frozen=True)
class AlbumPreview:
    """One watched album in a dry run. ``kind``: ``baseline`` (not watched yet: ``count`` is
    its size, nothing would be announced), ``unchanged``, ``changed`` (``count`` assets not
    seen before, ``matches`` what the rules would send) or ``missing`` (not visible)."""

    album: str
    kind: str
    count: int
    matches: tuple[tuple[AlbumRef, Match], ...]


async def preview_additions(
    client: AlbumClient, store: Store, rules: Sequence[CompiledRule]
) -> list[AlbumPreview]:
    """What the next poll would find in each watched album, writing nothing."""
    watched = watched_ids(rules)
    if not watched:
        return []
    watcher = AlbumWatcher(client, store, Metrics())
    states = store.album_states()
    listed = await watcher.listed(watched, states)
    previews = []
    for album_id in watched:
        album = listed.get(album_id)
        state = states.get(album_id)
        if album is None:
            previews.append(AlbumPreview(state.name if state else album_id, "missing", 0, ()))
        elif state is None:
            previews.append(AlbumPreview(album.name, "baseline", album.asset_count, ()))
        elif not album_changed(state, album):
            previews.append(AlbumPreview(album.name, "unchanged", album.asset_count, ()))
        else:
            found, _state, _fresh = await watcher.additions(album, state)
            hits = tuple(
                (found.album, m) for _rule, m in album_matches(rules, album_id, found.assets)
            )
            previews.append(AlbumPreview(album.name, "changed", len(found.assets), hits))
    return previews


@dataclass(frozen=True)
class AlbumDryRun:
    """The dry run's album part: one line per watched album with the matches of its additions,
    and how many additions (assets not seen before) were examined."""

    lines: tuple[tuple[str, tuple[tuple[AlbumRef, Match], ...]], ...] = ()
    additions: int = 0


async def preview_albums(
    client: AlbumClient,
    state_path: Path,
    rules: Sequence[CompiledRule],
) -> AlbumDryRun:
    """The dry run's album part: one line per watched album (what is known and what is not),
    with the matches of additions the sidecar has not seen yet. Reads the state file, never
    writes it."""
    if not rules:
        return AlbumDryRun()
    store = Store.open_for_reading(state_path)
    try:
        previews = await preview_additions(client, store, rules)
    finally:
        store.close()
    lines: list[tuple[str, tuple[tuple[AlbumRef, Match], ...]]] = [
        (
            "albums: Immich does not record when an asset was added to an album, so --since does "
            "not apply to album rules: shown are the additions the sidecar has not seen yet "
            f"(compared with its state file {state_path})",
            (),
        )
    ]
    for preview in previews:
        if preview.kind == "baseline":
            text = (
                f"album {preview.album!r}: not watched yet; at the first poll its "
                f"{count(preview.count, 'asset')} "
                f"{'becomes' if preview.count == 1 else 'become'} the baseline and nothing is "
                "announced"
            )
        elif preview.kind == "unchanged":
            text = f"album {preview.album!r}: unchanged since the sidecar last looked"
        elif preview.kind == "missing":
            text = f"album {preview.album!r}: not visible to the API key (deleted or unshared?)"
        else:
            text = (
                f"album {preview.album!r}: {count(preview.count, 'asset')} added since the "
                f"sidecar last looked, {len(preview.matches)} matching"
            )
        lines.append((text, preview.matches))
    additions = sum(p.count for p in previews if p.kind == "changed")
    return AlbumDryRun(tuple(lines), additions)
