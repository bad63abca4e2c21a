"""One message's words: a built-in text said in a language (its catalog's template rendered
with the message's context), or the config's own template; and Discord's limits, which every
text is cut to with "…" rather than failing at Discord.

``Words`` is what a batch carries: the language, the time zone and the templates the config
gives for its rule (or post) and target. A template that cannot be rendered at send time (it
was checked at load against sample data, but real data may differ) falls back to the built-in
text and is logged; a message is never lost over its words.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.messages.catalogs import SOURCE_LOCALE, catalog_of, translations
from sidecar.messages.environment import TemplateProblem, render_source
from sidecar.messages.templates import Templates
from sidecar.messages.texts import Text

log = logging.getLogger(__name__)

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FOOTER_LIMIT = 2048
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
EMBEDS_LIMIT = 6000  # all the embeds of one message together
ELLIPSIS = "…"


@dataclass(frozen=True)
class Words:
    """How a batch is worded: its language (BCP 47), time zone, and the config's templates
    (the rule's or post's over the target's default; empty: the built-in texts)."""

    locale: str = SOURCE_LOCALE
    timezone: str = "UTC"
    templates: Templates = field(default_factory=Templates)


ENGLISH = Words()


def say(words: Words, text: Text, context: Mapping[str, Any], count: int | None = None) -> str:
    """A built-in text in the batch's language, rendered with ``context``; plural forms are
    chosen by ``count`` (default: the context's ``count``)."""
    source = _source(words.locale, text, count if count is not None else context.get("count", 1))
    try:
        return render_source(source, context, words.locale, words.timezone)
    except TemplateProblem as problem:  # a translation the catalog test would have caught
        log.error("the %s translation of %r fails: %s", words.locale, text.context, problem)
        english = _source(SOURCE_LOCALE, text, context.get("count", 1))
        return render_source(english, context, SOURCE_LOCALE, words.timezone)


def _source(locale: str, text: Text, n: Any) -> str:
    found = translations(catalog_of(locale))
    if text.plural is None:
        return found.pgettext(text.context, text.singular)
    return found.npgettext(text.context, text.singular, text.plural, int(n))


def custom(words: Words, key: str, context: Mapping[str, Any], seed: str = "") -> str | None:
    """The config's template for ``key`` (content, title, description, footer) rendered, or
    None when it gives none. Of several contents one is picked, the same for the same ``seed``
    (a batch's retry says what its first attempt said)."""
    choices = words.templates.sources(key)
    if not choices:
        return None
    source = (
        choices[random.Random(seed).randrange(len(choices))] if len(choices) > 1 else choices[0]
    )
    try:
        return render_source(source, context, words.locale, words.timezone)
    except TemplateProblem as problem:
        log.warning(
            "messages.%s could not be rendered (%s); the built-in text is sent", key, problem
        )
        return None


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut with "…"."""
    return text if len(text) <= limit else text[: limit - 1] + ELLIPSIS


def fit_embeds(embeds: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each embed's parts within their own limits, then all of them within 6,000 characters
    together (Discord's sum): the last embeds' descriptions are cut first, the first embed
    (what a notification shows) last."""
    fitted = [_fit_embed(dict(e)) for e in embeds]
    over = sum(_embed_size(e) for e in fitted) - EMBEDS_LIMIT
    for embed in reversed(fitted):
        if over <= 0:
            break
        description = embed.get("description") or ""
        if description:
            keep = max(0, len(description) - over)
            embed["description"] = cut(description, keep) if keep else ""
            over -= len(description) - len(embed["description"])
    return fitted


def _fit_embed(embed: dict[str, Any]) -> dict[str, Any]:
    if "title" in embed:
        embed["title"] = cut(embed["title"], TITLE_LIMIT)
    if "description" in embed:
        embed["description"] = cut(embed["description"], DESCRIPTION_LIMIT)
    if "footer" in embed:
        embed["footer"] = {**embed["footer"], "text": cut(embed["footer"]["text"], FOOTER_LIMIT)}
    if "fields" in embed:
        embed["fields"] = [
            {
                **f,
                "name": cut(f["name"], FIELD_NAME_LIMIT),
                "value": cut(f["value"], FIELD_VALUE_LIMIT),
            }
            for f in embed["fields"]
        ]
    return embed


def _embed_size(embed: Mapping[str, Any]) -> int:
    size = len(embed.get("title") or "") + len(embed.get("description") or "")
    size += len((embed.get("footer") or {}).get("text") or "")
    size += len((embed.get("author") or {}).get("name") or "")
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields") or ())
