"""Turn a batch of deliveries into Discord messages (pure: values in, values out).

The output is the Discord API's own shape (embed dicts, an ``allowed_mentions`` dict), so the
bot sink and the webhook sink send the same thing. Pictures travel as attachments referenced
by ``attachment://<file>``: an Immich URL would need the API key and would not load for
Discord users anyway.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from discord.utils import escape_markdown, escape_mentions

from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, Batch, PostRef, people_names
from sidecar.targets.links import album_asset_link, album_link, asset_link

DISCORD_MAX_EMBEDS = 10
SUMMARY_PREVIEWS = 4
EMBED_TITLE_LIMIT = 256
EMBED_FIELD_LIMIT = 1024
CONTENT_LIMIT = 2000
NONCE_LENGTH = 25  # Discord rejects longer nonces
POST_LINK_TITLE = "Open in Immich"  # a scheduled post's embed title (its headline is the content)

_EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/avif": "avif",
}
# Discord turns "<@123>" and "<#123>" into mentions and links; a zero-width space stops that.
_MENTION_LIKE = re.compile(r"<(?=[@#])")


@dataclass(frozen=True)
class Thumbnail:
    """A picture of an asset, already fetched from Immich."""

    data: bytes
    content_type: str


@dataclass(frozen=True)
class MessageFile:
    filename: str
    data: bytes
    content_type: str


@dataclass(frozen=True)
class RenderedMessage:
    content: str
    embeds: tuple[dict[str, Any], ...]
    files: tuple[MessageFile, ...]
    allowed_mentions: dict[str, Any]
    delivery_ids: tuple[int, ...]  # the deliveries this message carries
    nonce: str  # the same deliveries always give the same nonce (Discord de-duplicates on it)

    @property
    def attachment_names(self) -> tuple[str, ...]:
        return tuple(f.filename for f in self.files)

    def payload(self) -> dict[str, Any]:
        """The JSON part of a create-message / execute-webhook request."""
        return {
            "content": self.content,
            "embeds": list(self.embeds),
            "allowed_mentions": self.allowed_mentions,
            "attachments": [
                {"id": index, "filename": name} for index, name in enumerate(self.attachment_names)
            ],
        }


def safe_text(text: str) -> str:
    """User or Immich text made inert: no markdown, no mention, no channel link."""
    return _MENTION_LIKE.sub("<\u200b", escape_mentions(escape_markdown(text)))


def allowed_mentions(role_ids: Sequence[int], user_ids: Sequence[int] = ()) -> dict[str, Any]:
    """Only the listed roles and users may be pinged: never @everyone, nor users or roles
    named in text."""
    return {
        "parse": [],
        "roles": list(role_ids),
        "users": list(user_ids),
        "replied_user": False,
    }


def member_users(batch: Batch, assets: Sequence[Asset]) -> tuple[int, ...]:
    """The linked members of the people in these assets (mention_members), each once."""
    people = {p.id for a in assets for p in a.people}
    return tuple(dict.fromkeys(u for person, u in batch.member_mentions if person in people))


NO_MENTIONS: dict[str, Any] = allowed_mentions(())


def message_nonce(rule: str, target: str, delivery_ids: Sequence[int]) -> str:
    key = f"{rule}\x00{target}\x00{','.join(map(str, sorted(delivery_ids)))}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()[:NONCE_LENGTH]


def is_summary(batch: Batch) -> bool:
    return len(batch.deliveries) > batch.batching.summary_over


def assets_to_picture(batch: Batch) -> list[Asset]:
    """The assets whose thumbnails the rendered messages will show (fetch these first)."""
    assets = [d.asset for d in batch.deliveries]
    if _batch_post(batch) is not None:
        return assets[:DISCORD_MAX_EMBEDS]
    return assets[:SUMMARY_PREVIEWS] if is_summary(batch) else assets


def attachment_name(asset_id: str, content_type: str) -> str:
    extension = _EXTENSIONS.get(content_type.split(";")[0].strip().lower(), "jpg")
    safe_id = re.sub(r"[^A-Za-z0-9-]", "", asset_id) or "asset"
    return f"{safe_id}.{extension}"


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


def _kind(asset: Asset) -> str:
    return "video" if asset.type == "VIDEO" else "photo"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def asset_embed(
    asset: Asset,
    rule: str,
    external_url: str,
    thumbnail: Thumbnail | None,
    album: AlbumRef | None = None,
) -> tuple[dict[str, Any], MessageFile | None]:
    people = describe_people(asset)
    title = f"New {_kind(asset)}"
    if asset.people:
        title += f" of {people}" if people != "nobody recognised" else ""
    fields: list[dict[str, Any]] = [
        {"name": "Who", "value": _truncate(people, EMBED_FIELD_LIMIT), "inline": True},
    ]
    if asset.taken_at is not None:
        # Discord shows <t:...> in each reader's own time zone.
        stamp = int(asset.taken_at.timestamp())
        fields.append({"name": "Taken", "value": f"<t:{stamp}:f>", "inline": True})
    where = ", ".join(safe_text(p) for p in (asset.city, asset.country) if p)
    if where:
        fields.append(
            {"name": "Where", "value": _truncate(where, EMBED_FIELD_LIMIT), "inline": True}
        )
    if album is not None:
        name = _truncate(safe_text(album.name or "album"), 200)
        fields.append(
            {
                "name": "Album",
                "value": f"[{name}]({album_link(external_url, album.id)})",
                "inline": True,
            }
        )
    fields.append({"name": "Rule", "value": _truncate(safe_text(rule), EMBED_FIELD_LIMIT)})
    url = (
        asset_link(external_url, asset.id)
        if album is None
        else album_asset_link(external_url, album.id, asset.id)
    )
    embed: dict[str, Any] = {
        "title": _truncate(title, EMBED_TITLE_LIMIT),
        "url": url,
        "fields": fields,
    }
    if asset.type == "VIDEO":
        embed["description"] = "🎬 This is a video: open it in Immich to play it."
    file = None
    if thumbnail is not None:
        name = attachment_name(asset.id, thumbnail.content_type)
        file = MessageFile(name, thumbnail.data, thumbnail.content_type)
        embed["image"] = {"url": f"attachment://{name}"}
    return embed, file


def _count_phrase(assets: Sequence[Asset]) -> str:
    videos = sum(1 for a in assets if a.type == "VIDEO")
    photos = len(assets) - videos
    if videos and photos:
        return f"{len(assets)} new photos and videos"
    if videos:
        return f"{videos} new video" + ("s" if videos != 1 else "")
    return f"{photos} new photo" + ("s" if photos != 1 else "")


def _mention_prefix(role_ids: Sequence[int], user_ids: Sequence[int] = ()) -> str:
    return "".join(f"<@&{role_id}> " for role_id in role_ids) + "".join(
        f"<@{user_id}> " for user_id in user_ids
    )


def summary_text(rule: str, assets: Sequence[Asset]) -> str:
    """ "Alice and Bob appear in 42 new photos" or "42 new photos match rule X"."""
    common = set.intersection(*({p.id for p in a.people if p.name.strip()} for a in assets))
    names = sorted({p.name for a in assets for p in a.people if p.id in common})
    count = _count_phrase(assets)
    if names:
        verb = "appears" if len(names) == 1 else "appear"
        return f"{join_names([safe_text(n) for n in names])} {verb} in {count}"
    verb = "matches" if len(assets) == 1 else "match"
    return f"{count} {verb} rule **{safe_text(rule)}**"


def album_summary_text(album: AlbumRef, assets: Sequence[Asset]) -> str:
    """ "3 new photos in Holiday 2026 — Alice, Bob": which album, and who appears."""
    names = sorted({p.name for a in assets for p in a.people if p.name.strip()})
    text = f"{_count_phrase(assets)} in **{safe_text(album.name or 'an album')}**"
    if names:
        text += " — " + ", ".join(safe_text(n) for n in names)
    return text


def _batch_album(batch: Batch) -> AlbumRef | None:
    """The album of an album rule's batch (the dispatcher groups one album per batch)."""
    return batch.deliveries[0].album if batch.deliveries else None


def render_batch(
    batch: Batch, external_url: str, thumbnails: Mapping[str, Thumbnail]
) -> list[RenderedMessage]:
    """The messages for one batch: one embed per asset, or one summary for a large burst.

    ``thumbnails`` maps asset ids to their pictures; an asset without one gets an embed
    without a picture.
    """
    if not batch.deliveries:
        return []
    post = _batch_post(batch)
    if post is not None:
        return [post_message(batch, post, external_url, thumbnails)]
    if is_summary(batch):
        users = member_users(batch, [d.asset for d in batch.deliveries])
        return [
            _summary_message(
                batch,
                external_url,
                thumbnails,
                _mention_prefix(batch.mention_roles, users),
                allowed_mentions(batch.mention_roles, users),
            )
        ]
    per_message = max(1, min(batch.batching.max_per_message, DISCORD_MAX_EMBEDS))
    messages = []
    deliveries = batch.deliveries
    for start in range(0, len(deliveries), per_message):
        chunk = deliveries[start : start + per_message]
        embeds: list[dict[str, Any]] = []
        files: list[MessageFile] = []
        for delivery in chunk:
            embed, file = asset_embed(
                delivery.asset,
                batch.rule,
                external_url,
                thumbnails.get(delivery.asset.id),
                delivery.album,
            )
            embeds.append(embed)
            if file is not None and file.filename not in {f.filename for f in files}:
                files.append(file)
        ids = tuple(d.id for d in chunk)
        album = _batch_album(batch)
        assets = [d.asset for d in chunk]
        users = member_users(batch, assets)
        content = _mention_prefix(batch.mention_roles, users) + (
            summary_text(batch.rule, assets) if album is None else album_summary_text(album, assets)
        )
        messages.append(
            RenderedMessage(
                content=_truncate(content, CONTENT_LIMIT),
                embeds=tuple(embeds),
                files=tuple(files),
                allowed_mentions=allowed_mentions(batch.mention_roles, users),
                delivery_ids=ids,
                nonce=message_nonce(batch.rule, batch.target, ids),
            )
        )
    return messages


def _gallery(
    embeds: list[dict[str, Any]],
    assets: Sequence[Asset],
    thumbnails: Mapping[str, Thumbnail],
    link: str,
) -> list[MessageFile]:
    """Attach the assets' pictures: the first on ``embeds[0]``, the others as embeds sharing
    its url, which Discord shows as one gallery. Returns the files to upload."""
    files: list[MessageFile] = []
    for asset in assets:
        thumbnail = thumbnails.get(asset.id)
        if thumbnail is None:
            continue
        name = attachment_name(asset.id, thumbnail.content_type)
        if name in {f.filename for f in files}:
            continue
        files.append(MessageFile(name, thumbnail.data, thumbnail.content_type))
        if "image" not in embeds[0]:
            embeds[0]["image"] = {"url": f"attachment://{name}"}
        else:
            embeds.append({"url": link, "image": {"url": f"attachment://{name}"}})
    return files


def _batch_post(batch: Batch) -> PostRef | None:
    """The message of a scheduled post's batch (the dispatcher groups one message a batch)."""
    return batch.deliveries[0].post if batch.deliveries else None


def post_message(
    batch: Batch, post: PostRef, external_url: str, thumbnails: Mapping[str, Thumbnail]
) -> RenderedMessage:
    """One scheduled post message: its headline as the content (what a notification shows),
    and its pictures as one gallery (embeds that share a url) under a link to Immich. The
    headline is said once: the embed's title is the link, not the headline again. Mentions are
    off: a post never pings anyone."""
    link = post.link or f"{external_url.rstrip('/')}/photos"
    text = safe_text(post.text)
    embeds: list[dict[str, Any]] = [{"title": POST_LINK_TITLE, "url": link}]
    files = _gallery(
        embeds, [d.asset for d in batch.deliveries[:DISCORD_MAX_EMBEDS]], thumbnails, link
    )
    ids = tuple(d.id for d in batch.deliveries)
    return RenderedMessage(
        content=_truncate(text, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=NO_MENTIONS,
        delivery_ids=ids,
        nonce=message_nonce(batch.rule, batch.target, ids),
    )


def _summary_message(
    batch: Batch,
    external_url: str,
    thumbnails: Mapping[str, Thumbnail],
    prefix: str,
    mentions: dict[str, Any],
) -> RenderedMessage:
    assets = [d.asset for d in batch.deliveries]
    album = _batch_album(batch)
    text = summary_text(batch.rule, assets) if album is None else album_summary_text(album, assets)
    link = (
        f"{external_url.rstrip('/')}/photos"
        if album is None
        else album_link(external_url, album.id)
    )
    where = "Immich" if album is None else "the album"
    # Embeds that share a url are shown by Discord as one gallery of up to 4 pictures.
    embeds: list[dict[str, Any]] = [
        {
            "title": _truncate(text.replace("**", ""), EMBED_TITLE_LIMIT),
            "url": link,
            "description": f"Rule **{safe_text(batch.rule)}**. Open {where} to see them all.",
        }
    ]
    files = _gallery(embeds, assets[:SUMMARY_PREVIEWS], thumbnails, link)
    ids = tuple(d.id for d in batch.deliveries)
    return RenderedMessage(
        content=_truncate(prefix + text, CONTENT_LIMIT),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=mentions,
        delivery_ids=ids,
        nonce=message_nonce(batch.rule, batch.target, ids),
    )
