"""The words of a Discord message: who is in a picture, how many new photos and videos, the
summary line of a batch, the mentions in front of it (pure; names made inert by
``safe_text``)."""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, people_names
from sidecar.targets.discord.safe import safe_text


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_people(asset: Asset) -> str:
    """ "Alice and Bob", "Alice and 1 other person", "someone", or "nobody recognised", the
    names sorted (``people_names``)."""
    names = [safe_text(name) for name in people_names(asset)]
    unnamed = len(asset.people) - len(names)
    if not asset.people:
        return "nobody recognised"
    if not names:
        return "someone" if unnamed == 1 else f"{unnamed} people, not named yet"
    if unnamed:
        names.append("1 other person" if unnamed == 1 else f"{unnamed} other people")
    return join_names(names)


def join_names(names: Sequence[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def kind_of(asset: Asset) -> str:
    return "video" if asset.type == "VIDEO" else "photo"


def count_phrase(assets: Sequence[Asset]) -> str:
    videos = sum(1 for a in assets if a.type == "VIDEO")
    photos = len(assets) - videos
    if videos and photos:
        return f"{len(assets)} new photos and videos"
    if videos:
        return f"{videos} new video" + ("s" if videos != 1 else "")
    return f"{photos} new photo" + ("s" if photos != 1 else "")


def mention_prefix(role_ids: Sequence[int], user_ids: Sequence[int] = ()) -> str:
    return "".join(f"<@&{role_id}> " for role_id in role_ids) + "".join(
        f"<@{user_id}> " for user_id in user_ids
    )


def summary_text(rule: str, assets: Sequence[Asset]) -> str:
    """ "Alice and Bob appear in 42 new photos" or "42 new photos match rule X"."""
    common = set.intersection(*({p.id for p in a.people if p.name.strip()} for a in assets))
    names = sorted({p.name for a in assets for p in a.people if p.id in common})
    count = count_phrase(assets)
    if names:
        verb = "appears" if len(names) == 1 else "appear"
        return f"{join_names([safe_text(n) for n in names])} {verb} in {count}"
    verb = "matches" if len(assets) == 1 else "match"
    return f"{count} {verb} rule **{safe_text(rule)}**"


def album_summary_text(album: AlbumRef, assets: Sequence[Asset]) -> str:
    """ "3 new photos in Holiday 2026 — Alice, Bob": which album, and who appears."""
    names = sorted({p.name for a in assets for p in a.people if p.name.strip()})
    text = f"{count_phrase(assets)} in **{safe_text(album.name or 'an album')}**"
    if names:
        text += " — " + ", ".join(safe_text(n) for n in names)
    return text


def batch_text(rule: str, album: AlbumRef | None, assets: Sequence[Asset]) -> str:
    """The summary line of a batch: by who appears, or by album for an album rule's batch."""
    return summary_text(rule, assets) if album is None else album_summary_text(album, assets)
