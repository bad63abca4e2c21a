"""Every value that comes from Immich or Discord (names, file names, album titles,
descriptions) goes into a message through one of these: made inert for Discord (no markdown,
no mention, no channel link), or kept as it is for the targets that are not Discord (the JSON
webhook's and the console's ``text``)."""

from __future__ import annotations

import re
from collections.abc import Callable

Escape = Callable[[str], str]

# Discord turns "<@123>" and "<#123>" into mentions and links; a zero-width space stops that.
_MENTION_LIKE = re.compile(r"<(?=[@#])")


def discord_escape(text: str) -> str:
    """User or Immich text made inert: no markdown, no mention, no channel link (discord.py's
    own escapes, imported here so that loading a config does not import discord.py)."""
    from discord.utils import escape_markdown, escape_mentions

    return _MENTION_LIKE.sub("<\u200b", escape_mentions(escape_markdown(text)))


def plain(text: str) -> str:
    """Text for a reader that is not Discord: as it is."""
    return text
