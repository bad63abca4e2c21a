"""A scheduled post's words. Its plan stores what the message says as facts (``PostRef.facts``:
numbers, years, a name, dates), and each target says them in its own language here: the
context names of its kind (``ages``, ``period``, ``ranking`` made in that language) and the
built-in headline."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sidecar.immich.models import Asset
from sidecar.messages import texts
from sidecar.messages.catalogs import cldr_locale
from sidecar.messages.context import message_context
from sidecar.messages.escape import Escape, plain
from sidecar.messages.filters import ago, number
from sidecar.messages.render import Words, custom, say
from sidecar.messages.texts import Text

HEADLINES: dict[str, Text] = {
    "memory_year": texts.MEMORY_YEAR,
    "memory_years": texts.MEMORY_YEARS,
    "birthday": texts.BIRTHDAY,
    "digest": texts.DIGEST,
}
_PERIODS = {"day": texts.PERIOD_DAY, "week": texts.PERIOD_WEEK, "month": texts.PERIOD_MONTH}


def post_facts(facts: Mapping[str, Any], words: Words, escape: Escape = plain) -> dict[str, Any]:
    """A post's stored facts as context values in the batch's language: ``ages`` ("vor 1 Jahr
    (2025)"), ``period`` ("Diese Woche"), ``ranking`` ("Alice 30, Bob 12"), names escaped,
    dates as dates."""
    locale = cldr_locale(words.locale)
    values = {k: v for k, v in facts.items() if k not in ("years", "since", "message")}
    if "person" in facts:
        values["person"] = escape(str(facts["person"]))
    if "years" in facts:
        values["ages"] = [f"{ago(int(n), locale)} ({int(year)})" for year, n in facts["years"]]
    if "period" in facts:
        period = _PERIODS.get(str(facts["period"]), texts.PERIOD_SINCE)
        values["period"] = say(words, period, {"date": _day(facts.get("since"))})
    if "ranking" in facts:
        values["ranking"] = ", ".join(
            f"{escape(str(name))} {number(n, locale)}" for name, n in facts["ranking"]
        )
    if "date" in facts:
        values["date"] = _day(facts["date"])
    if isinstance(facts.get("taken"), str):
        values["taken"] = datetime.fromisoformat(facts["taken"])
    return values


def post_description(facts: Mapping[str, Any], words: Words) -> str | None:
    """What the built-in post says under its headline: the day a memory's photos were taken
    ("Mittwoch, 14. Juni 2023"), in the batch's language and time zone."""
    if facts.get("message") != "memory_year" or "taken" not in facts:
        return None
    return say(words, texts.MEMORY_DAY, post_facts(facts, words))


def headline(facts: Mapping[str, Any], words: Words, escape: Escape = plain) -> str:
    """The built-in headline of a post message in the batch's language ("" for facts of no
    known message: a row queued before facts were stored keeps its stored text)."""
    text = HEADLINES.get(str(facts.get("message")))
    if text is None:
        return ""
    values = post_facts(facts, words, escape)
    count = values.get("age") if text is texts.BIRTHDAY else values.get("count", 1)
    return say(words, text, values, count=int(count or 0))


def post_content(
    facts: Mapping[str, Any],
    words: Words,
    *,
    post: str,
    assets: Sequence[Asset],
    links: Sequence[str],
    escape: Escape = plain,
    seed: str = "",
) -> str:
    """A post message's text: the config's content template, else the built-in headline."""
    context = message_context(rule=post, assets=assets, links=links, escape=escape)
    context.update(post_facts(facts, words, escape))
    own = custom(words, "content", context, seed)
    return own if own is not None else headline(facts, words, escape)


def _day(value: Any) -> Any:
    return date.fromisoformat(value) if isinstance(value, str) else value
