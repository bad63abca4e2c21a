"""The words of a Discord message, in the batch's language: who is in a picture, the embed's
title, field names and description, the summary's, the mentions in front of the content (pure;
every value from Immich made inert by ``discord_escape``; the content itself is
``sidecar.targets.words``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages import filters, texts
from sidecar.messages.catalogs import cldr_locale
from sidecar.messages.escape import discord_escape
from sidecar.messages.posts import post_description
from sidecar.messages.render import ENGLISH, Words, custom, cut, say
from sidecar.targets.base import AlbumRef, Batch, Delivery, people_names
from sidecar.targets.words import LinksOrUrl, batch_context, content, links_of

FIELDS = {
    "who": texts.FIELD_WHO,
    "taken": texts.FIELD_TAKEN,
    "where": texts.FIELD_WHERE,
    "album": texts.FIELD_ALBUM,
    "rule": texts.FIELD_RULE,
}


def truncate(text: str, limit: int) -> str:
    return cut(text, limit)


def describe_people(asset: Asset, words: Words = ENGLISH) -> str:
    """ "Alice and Bob", "Alice and 1 other person", "someone", or "nobody recognised", the
    names sorted (``people_names``) and joined as the language joins them."""
    if not asset.people:
        return say(words, texts.NOBODY, {})
    return join_names(people_parts(asset, words), words)


def people_parts(asset: Asset, words: Words = ENGLISH) -> list[str]:
    """Who is in a picture as list items: the names, then "1 other person" for the faces
    Immich has not named ("someone" alone); empty when it found no face."""
    names = [discord_escape(name) for name in people_names(asset)]
    unnamed = len(asset.people) - len(names)
    if names and unnamed:
        names.append(say(words, texts.OTHERS, {"count": unnamed}))
    elif unnamed:
        names = [say(words, texts.UNNAMED, {"count": unnamed})]
    return names


def join_names(names: Sequence[str], words: Words = ENGLISH) -> str:
    """ "Alice, Bob and Carol" as the batch's language joins a list."""
    return filters.names(names, cldr_locale(words.locale))


def field_name(key: str, words: Words) -> str:
    return say(words, FIELDS[key], {})


def kind_of(asset: Asset, words: Words = ENGLISH) -> str:
    """ "photo" or "video", in the batch's language (a picture nobody is recognised in)."""
    return say(words, texts.KIND_VIDEO if asset.type == "VIDEO" else texts.KIND_PHOTO, {})


def mention_prefix(role_ids: Sequence[int], user_ids: Sequence[int] = ()) -> str:
    return "".join(f"<@&{role_id}> " for role_id in role_ids) + "".join(
        f"<@{user_id}> " for user_id in user_ids
    )


def message_text(batch: Batch, deliveries: Sequence[Delivery], links: LinksOrUrl, seed: str) -> str:
    """The content of one message (without its mentions): the config's template or the
    built-in line, Discord-escaped."""
    return content(batch, deliveries, links, discord_escape, seed)


def asset_words(
    batch: Batch, delivery: Delivery, links: LinksOrUrl
) -> tuple[str, str | None, str | None]:
    """One picture's embed: its title, description and footer (the config's templates, about
    this one asset; else "New photo of Alice", and the note under a video)."""
    context = batch_context(batch, [delivery], links, discord_escape)
    words = batch.words
    title = custom(words, "title", context)
    if title is None:
        kind = texts.VIDEO_TITLE if delivery.asset.type == "VIDEO" else texts.PHOTO_TITLE
        title = say(words, kind, {**context, "people": people_parts(delivery.asset, words)})
    description = custom(words, "description", context)
    if description is None and delivery.asset.type == "VIDEO":
        description = say(words, texts.VIDEO_NOTE, context)
    return title, description, custom(words, "footer", context)


def summary_words(
    batch: Batch, links: LinksOrUrl, album: AlbumRef | None
) -> tuple[str, str, str | None]:
    """A large burst's embed: title (the content without its markdown, or the config's
    title), description and footer."""
    context = batch_context(batch, batch.deliveries, links, discord_escape)
    words = batch.words
    title = custom(words, "title", context)
    if title is None:
        title = message_text(batch, batch.deliveries, links, batch.key).replace("**", "")
    description = custom(words, "description", context)
    if description is None:
        where = links_of(links)
        linked = where.everything() if album is None else where.album(album.id)
        see_all = texts.SEE_ALL if album is None else texts.SEE_ALL_ALBUM
        description = say(words, see_all if linked else texts.RULE_ONLY, context)
    return title, description, custom(words, "footer", context)


def post_words(batch: Batch, links: LinksOrUrl) -> tuple[str, str | None, str | None]:
    """A scheduled post's embed over its gallery: its title (the link to Immich), and the
    config's description and footer where it gives them."""
    context: dict[str, Any] = batch_context(batch, batch.deliveries, links, discord_escape)
    words = batch.words
    title = custom(words, "title", context) or say(words, texts.OPEN_IN_IMMICH, context)
    description = custom(words, "description", context)
    post = batch.deliveries[0].post if batch.deliveries else None
    if description is None and post is not None:
        description = post_description(post.facts, words)
    return title, description, custom(words, "footer", context)
