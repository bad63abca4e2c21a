"""A Discord message laid out as embeds: one embed per asset (its picture attached), and the
gallery of a summary or a scheduled post: embeds that share a url, which Discord shows as one
gallery of up to 4 pictures (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, Delivery
from sidecar.targets.discord.render.message import MessageFile, Thumbnail
from sidecar.targets.discord.render.text import describe_people, kind_of, truncate
from sidecar.targets.discord.safe import attachment_name, safe_text
from sidecar.targets.links import Links

EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024
POST_LINK_TITLE = "Open in Immich"  # a scheduled post's embed title (its headline is the content)

Embeds = tuple[list[dict[str, Any]], list[MessageFile]]  # the embeds and the files they show


def asset_embed(
    asset: Asset,
    rule: str,
    links: Links,
    thumbnail: Thumbnail | None,
    album: AlbumRef | None = None,
) -> tuple[dict[str, Any], MessageFile | None]:
    people = describe_people(asset)
    title = f"New {kind_of(asset)}"
    if asset.people:
        title += f" of {people}" if people != "nobody recognised" else ""
    fields: list[dict[str, Any]] = [
        {"name": "Who", "value": truncate(people, EMBED_FIELD_LIMIT), "inline": True},
    ]
    if asset.taken_at is not None:
        # Discord shows <t:...> in each reader's own time zone.
        stamp = int(asset.taken_at.timestamp())
        fields.append({"name": "Taken", "value": f"<t:{stamp}:f>", "inline": True})
    where = ", ".join(safe_text(p) for p in (asset.city, asset.country) if p)
    if where:
        fields.append(
            {"name": "Where", "value": truncate(where, EMBED_FIELD_LIMIT), "inline": True}
        )
    if album is not None:
        name = truncate(safe_text(album.name or "album"), 200)
        album_url = links.album(album.id)
        fields.append(
            {
                "name": "Album",
                "value": f"[{name}]({album_url})" if album_url else name,
                "inline": True,
            }
        )
    fields.append({"name": "Rule", "value": truncate(safe_text(rule), EMBED_FIELD_LIMIT)})
    url = links.asset(asset.id, album.id if album is not None else None)
    embed: dict[str, Any] = {"title": truncate(title, EMBED_TITLE_LIMIT), "fields": fields}
    if url:
        embed["url"] = url
    if asset.type == "VIDEO":
        embed["description"] = "🎬 This is a video: open it in Immich to play it."
    file = None
    if thumbnail is not None:
        name = attachment_name(asset.id, thumbnail.content_type)
        file = MessageFile(name, thumbnail.data, thumbnail.content_type)
        embed["image"] = {"url": f"attachment://{name}"}
    return embed, file


def asset_embeds(
    deliveries: Sequence[Delivery],
    rule: str,
    links: Links,
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """One embed per delivery's asset; a picture shown twice is attached once."""
    embeds: list[dict[str, Any]] = []
    files: list[MessageFile] = []
    for delivery in deliveries:
        embed, file = asset_embed(
            delivery.asset,
            rule,
            links,
            thumbnails.get(delivery.asset.id),
            delivery.album,
        )
        embeds.append(embed)
        if file is not None and file.filename not in {f.filename for f in files}:
            files.append(file)
    return embeds, files


def summary_embeds(
    text: str,
    rule: str,
    link: str | None,
    where: str,
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """A large burst's one embed (its summary, a link to ``where`` to see them all) and the
    gallery of its first pictures."""
    embeds: list[dict[str, Any]] = [
        with_url(
            {
                "title": truncate(text.replace("**", ""), EMBED_TITLE_LIMIT),
                "description": f"Rule **{safe_text(rule)}**."
                + (f" Open {where} to see them all." if link else ""),
            },
            link,
        )
    ]
    return embeds, gallery(embeds, assets, thumbnails, link)


def post_embeds(
    link: str | None, assets: Sequence[Asset], thumbnails: Mapping[str, Thumbnail]
) -> Embeds:
    """A scheduled post's embeds: a link to Immich (the headline is the message's content, not
    said again) over the gallery of its pictures."""
    embeds: list[dict[str, Any]] = [with_url({"title": POST_LINK_TITLE}, link)]
    return embeds, gallery(embeds, assets, thumbnails, link)


def with_url(embed: dict[str, Any], url: str | None) -> dict[str, Any]:
    return {**embed, "url": url} if url else embed


def gallery(
    embeds: list[dict[str, Any]],
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
    link: str | None,
) -> list[MessageFile]:
    """Attach the assets' pictures: the first on ``embeds[0]``, the others as embeds sharing
    its url, which Discord shows as one gallery (without a url, only the first picture is
    shown). Returns the files to upload."""
    files: list[MessageFile] = []
    for asset in assets:
        thumbnail = thumbnails.get(asset.id)
        if thumbnail is None:
            continue
        name = attachment_name(asset.id, thumbnail.content_type)
        if name in {f.filename for f in files}:
            continue
        if "image" not in embeds[0]:
            embeds[0]["image"] = {"url": f"attachment://{name}"}
        elif link:
            embeds.append({"url": link, "image": {"url": f"attachment://{name}"}})
        else:
            break
        files.append(MessageFile(name, thumbnail.data, thumbnail.content_type))
    return files
