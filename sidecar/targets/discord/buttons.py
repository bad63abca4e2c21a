"""The buttons under a bot post: "Open in Immich" (a link) and "♥ Favourite" (one asset; in a
gallery one per picture, "♥ 1" ...), and a rendered gallery (components v2) as the discord.py
view the bot sends it with.

The Favourite button carries the asset id in its custom id, so the bot can answer a click
after a restart without remembering the message (``sidecar.discord.buttons`` parses it back).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import discord

from sidecar.messages import texts
from sidecar.messages.render import ENGLISH, Words, say

FAVOURITE_LABEL = texts.FAVOURITE.singular  # a re-made button's label is never shown
FAVOURITE_ID = re.compile(r"immich:fav:(?P<asset>[0-9a-fA-F-]{36})")


def favourite_custom_id(asset_id: str) -> str:
    return f"immich:fav:{asset_id}"


class _SentOnly(discord.ui.View):
    """A view only sent, never listened to: clicks are answered by the dynamic items the bot
    registers at start, for messages of earlier runs too."""

    def is_dispatchable(self) -> bool:
        return False


class _SentLayout(discord.ui.LayoutView):
    """A components v2 view only sent, never listened to (as ``_SentOnly``)."""

    def is_dispatchable(self) -> bool:
        return False


def layout_view(components: Iterable[Mapping[str, Any]]) -> discord.ui.LayoutView:
    """A rendered gallery's components (text displays, a media gallery, rows of buttons) as
    discord.py's layout view, which sends them with the ``IS_COMPONENTS_V2`` flag."""
    view = _SentLayout(timeout=None)
    for component in components:
        kind = component["type"]
        if kind == discord.ComponentType.text_display.value:
            view.add_item(discord.ui.TextDisplay[Any](str(component["content"])))
        elif kind == discord.ComponentType.media_gallery.value:
            gallery = discord.ui.MediaGallery[Any]()
            for item in component["items"]:
                gallery.add_item(media=item["media"]["url"], description=item.get("description"))
            view.add_item(gallery)
        elif kind == discord.ComponentType.action_row.value:
            row = discord.ui.ActionRow[Any]()
            for button in component["components"]:
                row.add_item(_button(button))
            view.add_item(row)
        else:
            raise ValueError(f"no view for component type {kind}")
    return view


def _button(button: Mapping[str, Any]) -> discord.ui.Button[Any]:
    if "url" in button:
        return discord.ui.Button[Any](label=button["label"], url=button["url"])
    return discord.ui.Button[Any](
        label=button["label"],
        style=discord.ButtonStyle(button["style"]),
        custom_id=button["custom_id"],
    )


def post_view(
    link: str | None, asset_ids: Sequence[str], *, favourite: bool, words: Words = ENGLISH
) -> discord.ui.View:
    """The buttons of one post, labelled in its language: the link to Immich, and Favourite
    when the post shows exactly one asset (``favourite``: the config names roles that may use
    it)."""
    view = _SentOnly(timeout=None)
    if link:
        view.add_item(discord.ui.Button[Any](label=say(words, texts.OPEN_IN_IMMICH, {}), url=link))
    if favourite and len(asset_ids) == 1:
        view.add_item(
            discord.ui.Button[Any](
                label=say(words, texts.FAVOURITE, {}),
                style=discord.ButtonStyle.secondary,
                custom_id=favourite_custom_id(asset_ids[0]),
            )
        )
    return view
