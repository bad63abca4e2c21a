"""A Discord message laid out as embeds: one embed per asset (its picture attached), and the
gallery of a summary or a scheduled post: embeds that share a url, which Discord shows as one
gallery of up to 4 pictures (pure). Their words come from ``text``, in the batch's language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages.render import fit_embeds
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.discord.render.message import MessageFile, Thumbnail
from sidecar.targets.discord.render.text import (
    asset_words,
    describe_people,
    field_name,
    post_words,
    truncate,
)
from sidecar.targets.discord.safe import attachment_name, safe_text
from sidecar.targets.links import Links

EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024

Embeds = tuple[list[dict[str, Any]], list[MessageFile]]  # the embeds and the files they show


def asset_embed(
    batch: Batch,
    delivery: Delivery,
    links: Links,
    thumbnail: Thumbnail | None,
) -> tuple[dict[str, Any], MessageFile | None]:
    asset, album, words = delivery.asset, delivery.album, batch.words
    title, description, footer = asset_words(batch, delivery, links)
    fields: list[dict[str, Any]] = [
        {"name": field_name("who", words), "value": describe_people(asset, words), "inline": True},
    ]
    if asset.taken_at is not None:
        # Discord shows <t:...> in each reader's own time zone and language.
        stamp = int(asset.taken_at.timestamp())
        fields.append(
            {"name": field_name("taken", words), "value": f"<t:{stamp}:f>", "inline": True}
        )
    where = ", ".join(safe_text(p) for p in (asset.city, asset.country) if p)
    if where:
        fields.append({"name": field_name("where", words), "value": where, "inline": True})
    if album is not None:
        name = truncate(safe_text(album.name) or "…", 200)
        album_url = links.album(album.id)
        fields.append(
            {
                "name": field_name("album", words),
                "value": f"[{name}]({album_url})" if album_url else name,
                "inline": True,
            }
        )
    rules = ", ".join(batch.rule_names)  # a message several rules sent names every one
    fields.append({"name": field_name("rule", words), "value": safe_text(rules)})
    url = links.asset(asset.id, album.id if album is not None else None)
    embed: dict[str, Any] = with_url({"title": title, "fields": fields}, url)
    if description:
        embed["description"] = description
    if footer:
        embed["footer"] = {"text": footer}
    file = None
    if thumbnail is not None:
        name = attachment_name(asset.id, thumbnail.content_type)
        file = MessageFile(name, thumbnail.data, thumbnail.content_type)
        embed["image"] = {"url": f"attachment://{name}"}
    return embed, file


def asset_embeds(
    batch: Batch,
    deliveries: Sequence[Delivery],
    links: Links,
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """One embed per delivery's asset; a picture shown twice is attached once."""
    embeds: list[dict[str, Any]] = []
    files: list[MessageFile] = []
    for delivery in deliveries:
        embed, file = asset_embed(batch, delivery, links, thumbnails.get(delivery.asset.id))
        embeds.append(embed)
        if file is not None and file.filename not in {f.filename for f in files}:
            files.append(file)
    return fit_embeds(embeds), files


def summary_embeds(
    words: tuple[str, str | None, str | None],
    link: str | None,
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """A large burst's one embed (its title, the description that says where to see them all)
    and the gallery of its first pictures."""
    return headed_gallery(words, link, assets, thumbnails)


def post_embeds(
    batch: Batch,
    links: Links,
    link: str | None,
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """A scheduled post's embeds: a link to Immich (the headline is the message's content, not
    said again) over the gallery of its pictures."""
    return headed_gallery(post_words(batch, links), link, assets, thumbnails)


def headed_gallery(
    words: tuple[str, str | None, str | None],
    link: str | None,
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
) -> Embeds:
    """One embed of ``words`` (title, description, footer) linking to ``link``, over the
    gallery of ``assets``; within Discord's limits."""
    title, description, footer = words
    embed: dict[str, Any] = with_url({"title": title}, link)
    if description:
        embed["description"] = description
    if footer:
        embed["footer"] = {"text": footer}
    embeds = [embed]
    files = gallery(embeds, assets, thumbnails, link)
    return fit_embeds(embeds), files


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
