"""The bot speaks each member's language: slash commands carry Discord's own
``name_localizations``/``description_localizations`` (a ``Translator`` reading the catalogs),
and a reply is worded in the language of the member's Discord client where the sidecar speaks
it, else in the config's ``locale``.

Command and option names stay English in every language: the docs, the replies and the claim
messages name them (``/immich dm on``), and a name that differs per member would break those.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from sidecar.config.model import Settings
from sidecar.messages.catalogs import SOURCE_LOCALE, UnknownLanguage, catalog_of, translations
from sidecar.messages.render import Words, say
from sidecar.messages.texts import Text

_NAMES = frozenset(
    {
        app_commands.TranslationContextLocation.command_name,
        app_commands.TranslationContextLocation.group_name,
        app_commands.TranslationContextLocation.parameter_name,
        app_commands.TranslationContextLocation.choice_name,
    }
)


class CatalogTranslator(app_commands.Translator):
    """Descriptions of the commands and their options in every language the sidecar speaks."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        if context.location in _NAMES:
            return None
        try:
            catalog = catalog_of(locale.value)
        except UnknownLanguage:
            return None
        if catalog == SOURCE_LOCALE:
            return None
        found = translations(catalog).gettext(string.message)
        return found if found != string.message else None


def member_words(interaction: discord.Interaction, settings: Settings) -> Words:
    """The words of a reply to this member: their client's language if the sidecar speaks it,
    else the config's."""
    tag = getattr(interaction.locale, "value", None)
    if isinstance(tag, str):
        try:
            catalog_of(tag)
            return Words(tag, settings.timezone)
        except UnknownLanguage:
            pass
    return Words(settings.locale, settings.timezone)


def reply_text(
    interaction: discord.Interaction, settings: Settings, text: Text, **values: Any
) -> str:
    """A built-in text for this member (values from Immich or Discord must come escaped)."""
    return say(member_words(interaction, settings), text, values)
