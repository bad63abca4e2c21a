"""The filters a message template may use, each in its message's language (CLDR through
Babel) and its time zone: ``names`` ("Alice, Bob und Carol"), ``date`` and ``datetime``
(``short|medium|long|full`` or a Babel pattern such as ``"d MMMM y"``), ``plural``, ``number``
and ``ago`` ("vor 3 Jahren")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_timedelta
from babel.lists import format_list
from babel.numbers import format_decimal

NAMED_FORMATS = ("short", "medium", "long", "full")


def _moment(value: Any) -> date | datetime:
    if isinstance(value, date):  # a datetime is a date too
        return value
    if isinstance(value, str):
        text = value.replace("Z", "+00:00")
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    raise TypeError(f"expected a date, got {type(value).__name__}")


def names(values: Iterable[Any], locale: Locale) -> str:
    """A list as the language joins it: "Alice, Bob and Carol"."""
    listed = [str(v) for v in values]
    return format_list(listed, locale=locale) if listed else ""


def local_date(value: Any, format: str, locale: Locale, zone: ZoneInfo) -> str:
    moment = _moment(value)
    if isinstance(moment, datetime):
        moment = moment.astimezone(zone) if moment.tzinfo else moment
        moment = moment.date()
    return format_date(moment, format=format, locale=locale)


def local_datetime(value: Any, format: str, locale: Locale, zone: ZoneInfo) -> str:
    moment = _moment(value)
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=zone)
    return format_datetime(moment, format=format, tzinfo=zone, locale=locale)


def plural(n: Any, one: str, other: str, locale: Locale, **forms: str) -> str:
    """``one`` or ``other`` by the language's plural rule; ``few=``, ``many=``, ``two=`` and
    ``zero=`` where the language has those forms (Polish: 1 zdjęcie, 3 zdjęcia, 5 zdjęć)."""
    category = locale.plural_form(abs(n))
    if category in forms:
        return forms[category]
    return one if category == "one" else other


def number(n: Any, locale: Locale) -> str:
    return format_decimal(n, locale=locale)


def ago(years: Any, locale: Locale) -> str:
    """So many years back, as the language says it: "3 years ago", "vor 3 Jahren"."""
    return format_timedelta(
        timedelta(days=-365 * int(years)),
        granularity="year",
        threshold=1000,
        add_direction=True,
        locale=locale,
    )


def filters_for(locale: Locale, zone: ZoneInfo) -> dict[str, Callable[..., str]]:
    """The filters bound to one language and time zone."""

    def date_filter(value: Any, format: str = "medium") -> str:
        return local_date(value, format, locale, zone)

    def datetime_filter(value: Any, format: str = "medium") -> str:
        return local_datetime(value, format, locale, zone)

    def plural_filter(n: Any, one: str, other: str, **forms: str) -> str:
        return plural(n, one, other, locale, **forms)

    return {
        "names": lambda values: names(values, locale),
        "date": date_filter,
        "datetime": datetime_filter,
        "plural": plural_filter,
        "number": lambda n: number(n, locale),
        "ago": lambda years: ago(years, locale),
    }
