"""The buttons under a bot post: "Open in Immich" (a link) and "♥ Favourite" (one asset).

The Favourite button carries the asset id in its custom id, so the bot can answer a click
after a restart without remembering the message (``sidecar.discord.buttons`` parses it back).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
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
