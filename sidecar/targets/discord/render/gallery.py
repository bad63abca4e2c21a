"""A Discord message laid out as a gallery (``layout: gallery``, pure): one text block, one
media gallery of up to 10 pictures and videos, and the buttons under it, as components v2
(the ``IS_COMPONENTS_V2`` flag; no content or embeds). For a webhook that takes no components,
the same message as embeds that share a url, which Discord shows as cards of up to 4 pictures.

The text block is the message's headline (today's words) and one line per picture: its
number in the gallery, ``▶`` for a video, who is in it, when and where it was taken, and why a
video is not attached ("too large to attach: 212 MB"). A video that is attached plays in the
gallery; one that is not shows its preview.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, Words, say
from sidecar.targets.base import Batch
from sidecar.targets.discord.buttons import favourite_custom_id
from sidecar.targets.discord.render.batch import ASSETS, POST, SUMMARY, Draft, headline, who_to_ping
from sidecar.targets.discord.render.fit import Part, within
from sidecar.targets.discord.render.message import (
    CONTENT_LIMIT,
    IS_COMPONENTS_V2,
    V2_TEXT_LIMIT,
    Media,
    MessageFile,
    RenderedMessage,
    Thumbnail,
    message_nonce,
)
from sidecar.targets.discord.render.text import (
    describe_people,
    kind_of,
    post_words,
    summary_words,
    truncate,
)
from sidecar.targets.discord.safe import attachment_name, safe_text
from sidecar.targets.links import Links

TEXT, GALLERY, ROW, BUTTON = 10, 12, 1, 2
LINK_STYLE, SECONDARY_STYLE = 5, 2
BUTTONS_PER_ROW = 5
ALT_TEXT_LIMIT = 1024
LINE_LIMIT = 300
VIDEO_MARK = "▶"
EMBED_GROUP = 4  # pictures Discord shows in one card of embeds sharing a url
EMBED_DESCRIPTION_LIMIT = 4096


@dataclass(frozen=True)
class Buttons:
    """Which buttons a message gets: "Open" (a link; webhooks may send links too) and ♥ per
    picture (bot channels whose config names Favourite roles; never in DMs or webhooks)."""

    open: bool = True
    favourite: bool = False


def render_gallery(
    batch: Batch,
    draft: Draft,
    part: Part,
    links: Links,
    media: Mapping[str, Media],
    buttons: Buttons = Buttons(),
) -> RenderedMessage:
    """One message of a draft as components v2: text, gallery, buttons."""
    shown = [(asset, within(media.get(asset.id))) for asset in part.shown]
    components: list[dict[str, Any]] = [
        {"type": TEXT, "content": _text(batch, draft, part, links, shown)}
    ]
    items, files = _gallery_items(shown, batch.words)
    if items:
        components.append({"type": GALLERY, "items": items})
    components += _button_rows(draft, part, links, buttons, batch.words)
    _, mentions = who_to_ping(batch, draft)
    return RenderedMessage(
        content="",
        embeds=(),
        files=tuple(files),
        allowed_mentions=mentions if part.first else _no_pings(mentions),
        delivery_ids=part.ids,
        nonce=message_nonce(batch.rule, batch.target, part.ids),
        components=tuple(components),
        flags=IS_COMPONENTS_V2,
        link=open_link(draft, part, links),
    )


def render_gallery_embeds(
    batch: Batch, draft: Draft, part: Part, links: Links, media: Mapping[str, Media]
) -> RenderedMessage:
    """The same message for a webhook that takes no components: the headline as content, the
    lines in the first embed, the pictures as cards of 4 (embeds sharing a url); attached
    videos go along as files (Discord plays those too)."""
    shown = [(asset, within(media.get(asset.id))) for asset in part.shown]
    link = open_link(draft, part, links)
    prefix, mentions = who_to_ping(batch, draft)
    embeds: list[dict[str, Any]] = []
    files: list[MessageFile] = []
    for index, (asset, item) in enumerate(shown):
        file = _file(asset, item.video if item is not None else None)
        if file is not None:
            files.append(file)
            continue
        picture = _file(asset, item.picture if item is not None else None)
        if picture is None:
            continue
        files.append(picture)
        group_url = f"{link}#{index // EMBED_GROUP + 1}" if link else None
        embed: dict[str, Any] = {"image": {"url": f"attachment://{picture.filename}"}}
        if group_url:
            embed["url"] = group_url
        embeds.append(embed)
    lines = "\n".join(_lines(batch, draft, part, links, shown))
    first: dict[str, Any] = {
        "title": say(batch.words, texts.OPEN_IN_IMMICH, {}),
        "description": truncate(lines, EMBED_DESCRIPTION_LIMIT),
    }
    if embeds:
        embeds[0] = {**first, **embeds[0]}
    elif lines:
        embeds.append({**first, **({"url": link} if link else {})})
    return RenderedMessage(
        content=truncate(
            (prefix if part.first else "") + _headline(batch, draft, part, links), CONTENT_LIMIT
        ),
        embeds=tuple(embeds),
        files=tuple(files),
        allowed_mentions=mentions if part.first else _no_pings(mentions),
        delivery_ids=part.ids,
        nonce=message_nonce(batch.rule, batch.target, part.ids),
        link=link,
    )


def open_link(draft: Draft, part: Part, links: Links) -> str | None:
    """Where the message's "Open" goes: its one picture, its album, its post, or everything
    (with ``links: shared``, the message's shared link for all of them)."""
    album = draft.album
    if draft.kind == POST and draft.post is not None:
        return links.rebased(draft.post.link) or links.everything()
    if draft.kind == ASSETS and len(part.shown) == 1:
        return links.asset(part.shown[0].id, album.id if album is not None else None)
    return links.album(album.id) if album is not None else links.everything()


def too_large_note(size: int | None, limit: int, words: Words = ENGLISH) -> str:
    """Why a video is not attached: "too large to attach: 212 MB" (in the batch's language;
    the number in the language's own format)."""
    mib = 1024 * 1024
    if size is None:
        return say(words, texts.TOO_LARGE_OVER, {"size": round(limit / mib, 1)})
    shown = round(size / mib) if size >= 10 * mib else round(size / mib, 1)
    return say(words, texts.TOO_LARGE, {"size": shown})


# -- the text block --------------------------------------------------------------------------


def _headline(batch: Batch, draft: Draft, part: Part, links: Links) -> str:
    text = headline(batch, draft, links)
    return text if part.count == 1 else f"{text} ({part.number}/{part.count})"


def _text(
    batch: Batch,
    draft: Draft,
    part: Part,
    links: Links,
    shown: Sequence[tuple[Asset, Media | None]],
) -> str:
    prefix, _ = who_to_ping(batch, draft)
    first = (prefix if part.first else "") + _headline(batch, draft, part, links)
    return truncate("\n".join([first, *_lines(batch, draft, part, links, shown)]), V2_TEXT_LIMIT)


def _lines(
    batch: Batch,
    draft: Draft,
    part: Part,
    links: Links,
    shown: Sequence[tuple[Asset, Media | None]],
) -> list[str]:
    """One line per picture of a message of new assets; a summary says where to see them
    all; a post's headline says it all."""
    words = batch.words
    if draft.kind == SUMMARY:
        _, description, _ = summary_words(batch, links, draft.album)
        return [description] if description else []
    if draft.kind != ASSETS:
        _, said, _ = post_words(batch, links) if draft.kind == POST else (None, None, None)
        notes = [_video_note(a, m, words) for a, m in shown if _video_note(a, m, words)]
        return ([said] if said else []) + notes
    album = draft.album
    return [
        truncate(
            _asset_line(
                number, asset, item, links.asset(asset.id, album.id if album else None), words
            ),
            LINE_LIMIT,
        )
        for number, (asset, item) in enumerate(shown, start=1)
    ]


def _asset_line(
    number: int, asset: Asset, media: Media | None, link: str | None, words: Words
) -> str:
    """``**2** ▶ [Alice and Bob](link) · <t:…:f> · Lyon, France · too large to attach: 212 MB``."""
    who = describe_people(asset, words) if asset.people else kind_of(asset, words)
    parts = [f"[{who}]({link})" if link else who]
    if asset.taken_at is not None:
        parts.append(f"<t:{int(asset.taken_at.timestamp())}:f>")  # each reader's own time zone
    where = ", ".join(safe_text(p) for p in (asset.city, asset.country) if p)
    if where:
        parts.append(where)
    if media is not None and media.refused and media.video is None:
        parts.append(media.refused)
    mark = f" {VIDEO_MARK}" if asset.type == "VIDEO" else ""
    return f"**{number}**{mark} " + " · ".join(parts)


def _video_note(asset: Asset, media: Media | None, words: Words) -> str:
    if asset.type != "VIDEO" or media is None or media.video is not None or not media.refused:
        return ""
    who = describe_people(asset, words) if asset.people else kind_of(asset, words)
    return f"{VIDEO_MARK} {who}: {media.refused}"


# -- the gallery and the buttons -------------------------------------------------------------


def _gallery_items(
    shown: Sequence[tuple[Asset, Media | None]], words: Words
) -> tuple[list[dict[str, Any]], list[MessageFile]]:
    items: list[dict[str, Any]] = []
    files: list[MessageFile] = []
    for asset, media in shown:
        video = media.video if media is not None else None
        file = _file(asset, video) or _file(asset, media.picture if media is not None else None)
        if file is None or file.filename in {f.filename for f in files}:
            continue
        files.append(file)
        items.append(
            {
                "media": {"url": f"attachment://{file.filename}"},
                "description": _alt(asset, media, words),
            }
        )
    return items, files


def _file(asset: Asset, shown: Thumbnail | None) -> MessageFile | None:
    if shown is None:
        return None
    return MessageFile(
        attachment_name(asset.id, shown.content_type), shown.data, shown.content_type
    )


def _alt(asset: Asset, media: Media | None, words: Words) -> str:
    """A picture's description (what a screen reader says): who, and a video's mark."""
    who = describe_people(asset, words) if asset.people else kind_of(asset, words)
    if asset.type != "VIDEO":
        return truncate(who, ALT_TEXT_LIMIT)
    attached = media is not None and media.video is not None
    video = say(words, texts.KIND_VIDEO if attached else texts.VIDEO_PREVIEW, {})
    return truncate(f"{VIDEO_MARK} {video}: {who}", ALT_TEXT_LIMIT)


def _button_rows(
    draft: Draft, part: Part, links: Links, buttons: Buttons, words: Words
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    link = open_link(draft, part, links)
    if buttons.open and link:
        label = say(words, texts.OPEN_IN_IMMICH, {})
        found.append({"type": BUTTON, "style": LINK_STYLE, "label": label, "url": link})
    if buttons.favourite and draft.kind != SUMMARY:
        single = len(part.shown) == 1
        for number, asset in enumerate(part.shown, start=1):
            found.append(
                {
                    "type": BUTTON,
                    "style": SECONDARY_STYLE,
                    "label": say(words, texts.FAVOURITE, {}) if single else f"♥ {number}",
                    "custom_id": favourite_custom_id(asset.id),
                }
            )
    return [
        {"type": ROW, "components": found[start : start + BUTTONS_PER_ROW]}
        for start in range(0, len(found), BUTTONS_PER_ROW)
    ]


def _no_pings(mentions: Mapping[str, Any]) -> dict[str, Any]:
    """A message after the first of a split one pings nobody again."""
    return {**mentions, "roles": [], "users": []}
