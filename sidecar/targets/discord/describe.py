"""What a Discord target would send for a batch, in words, for ``dry-run``: its layout, each
message's files and sizes (pictures fetched as the sink fetches them; a video's size read from
the headers of its playback answer, never downloaded) and the links it would make. Makes no
link and sends nothing."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.immich.models import Asset, VideoTooLarge
from sidecar.targets.base import Batch, MediaSource
from sidecar.targets.discord.fetch import fetch_thumbnails
from sidecar.targets.discord.render.batch import Draft, drafts
from sidecar.targets.discord.render.fit import Part, fit
from sidecar.targets.discord.render.gallery import too_large_note
from sidecar.targets.discord.render.message import MESSAGE_BYTES, Media, Thumbnail
from sidecar.targets.presentation import Presentation

KIB = 1024


def size_text(size: int) -> str:
    """ "240 KB", "3.0 MB" (in units of 1024, as Discord's limit and ``max_mb`` count)."""
    if size < KIB * KIB:
        return f"{max(1, round(size / KIB))} KB"
    return f"{size / (KIB * KIB):.1f} MB"


async def describe_batch(
    batch: Batch, source: MediaSource, presentation: Presentation
) -> list[str]:
    """One line for the target, then one per message it would send."""
    found = drafts(batch, gallery=presentation.gallery)
    shown = [a for d in found for a in d.shown]
    pictures = await fetch_thumbnails(source, shown, attempts=99)  # a missing one: left out
    media = {a.id: Media(picture=pictures.get(a.id)) for a in shown}
    if presentation.gallery and presentation.video.attach:
        media.update(await _probe_videos(source, shown, pictures, presentation))
    parts = [
        part for d in found for part in (fit(d, media) if presentation.gallery else [_whole(d)])
    ]
    lines = [
        f"target {batch.target} ({presentation.layout}, links: {presentation.links}), rule "
        f"{batch.rule}: {len(parts)} message{'s' if len(parts) != 1 else ''}"
    ]
    for number, part in enumerate(parts, start=1):
        lines.append(f"    message {number}: {_files(part, media)}{_link(presentation)}")
    return lines


def _whole(draft: Draft) -> Part:
    return Part(draft.deliveries, draft.shown)


async def _probe_videos(
    source: MediaSource,
    assets: list[Asset],
    pictures: Mapping[str, Thumbnail],
    presentation: Presentation,
) -> dict[str, Media]:
    """Each video as the sink would show it, by the size its playback answer declares."""
    limit = min(presentation.video.max_bytes, MESSAGE_BYTES)
    found: dict[str, Media] = {}
    for asset in (a for a in assets if a.type == "VIDEO"):
        try:
            answer = await source.video_playback(asset.id, 0)  # the headers only
        except Exception as error:  # the sink shows its preview then, too
            found[asset.id] = Media(pictures.get(asset.id), refused="no playable video from Immich")
            del error
            continue
        size = answer.size if isinstance(answer, VideoTooLarge) else len(answer.data)
        picture = pictures.get(asset.id)
        if size is not None and size <= limit:
            found[asset.id] = Media(picture, Thumbnail(bytes(size), "video/mp4"))
        else:
            found[asset.id] = Media(picture, refused=too_large_note(size, limit))
    return found


def _files(part: Part, media: Mapping[str, Media]) -> str:
    files = []
    total = 0
    for asset in part.shown:
        item = media.get(asset.id)
        name = asset.original_file_name or asset.id
        if item is None or item.size == 0:
            files.append(f"{name} (no picture)")
            continue
        total += item.size
        if item.video is not None:
            files.append(f"{name}: the video, {size_text(item.size)}")
        elif item.refused:
            files.append(f"{name}: its preview, {size_text(item.size)} ({item.refused})")
        else:
            files.append(f"{name}: {size_text(item.size)}")
    count = len(part.deliveries)
    return (
        f"{count} deliver{'ies' if count != 1 else 'y'}, {len(files)} file"
        f"{'s' if len(files) != 1 else ''}, {size_text(total) if total else '0 KB'}: "
        + ", ".join(files)
    )


def _link(presentation: Presentation) -> str:
    return f"; {shared_link_words(presentation)}" if presentation.links == "shared" else ""


def shared_link_words(presentation: Presentation) -> str:
    """What ``links: shared`` would make, for dry-run."""
    options = presentation.shared_links
    days = options.expire / 86400
    expiry = f"{days:g}d" if days >= 1 else f"{options.expire / 3600:g}h"
    return (
        f"an Immich shared link would be made (expires after {expiry}; downloads "
        f"{'on' if options.download else 'off'}, metadata {'on' if options.metadata else 'off'})"
    )
