"""The one sandboxed Jinja2 environment messages are written in (as Home Assistant's template
helper owns its own): ``ImmutableSandboxedEnvironment`` (a template may read its context, never
change it or reach Python's internals), ``StrictUndefined`` (an unknown name is an error, not an
empty string) and no autoescape (Discord is not HTML; values are escaped for Discord when the
context is built). One environment per language and time zone, since its filters speak them;
templates are compiled once per environment and kept."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from sidecar.messages.catalogs import cldr_locale
from sidecar.messages.filters import filters_for


class TemplateProblem(Exception):
    """A template that does not compile or render: Jinja's message and where in the template
    (line and column, 1-based; column 0 when Jinja cannot tell)."""

    def __init__(self, message: str, line: int = 1, column: int = 0) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column

    def __str__(self) -> str:
        column = f", column {self.column}" if self.column else ""
        return f"{self.message} (template line {self.line}{column})"


@cache
def environment(locale: str = "en", timezone: str = "UTC") -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=False,
        auto_reload=False,
        cache_size=0,  # templates are kept by ``compiled`` instead
    )
    filters = filters_for(cldr_locale(locale), ZoneInfo(timezone))
    env.filters.update(filters)
    env.globals.update({"plural": filters["plural"]})
    return env


@lru_cache(maxsize=2048)
def compiled(source: str, locale: str = "en", timezone: str = "UTC") -> Template:
    """``source`` compiled in that language's environment; ``TemplateProblem`` when it does
    not compile (a syntax error, an unknown filter)."""
    try:
        return environment(locale, timezone).from_string(source)
    except TemplateSyntaxError as error:
        raise TemplateProblem(
            error.message or str(error), error.lineno, _column(source, error)
        ) from None
    except TemplateError as error:  # an unknown filter or test is an assertion error
        raise TemplateProblem(str(error), *_locate(source, str(error))) from None


def render_source(
    source: str, context: Mapping[str, Any], locale: str = "en", timezone: str = "UTC"
) -> str:
    """``source``'s text for ``context``; ``TemplateProblem`` when it does not compile or
    cannot be rendered (an unknown name or attribute, something the sandbox forbids, a filter
    given a value it cannot take)."""
    template = compiled(source, locale, timezone)
    try:
        return template.render(context)
    except (UndefinedError, SecurityError, TemplateError) as error:
        raise TemplateProblem(str(error), *_locate(source, str(error))) from None
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        message = f"{type(error).__name__}: {error}"
        raise TemplateProblem(message, *_locate(source, str(error))) from None


_QUOTED = re.compile(r"'([^']+)'")


def _locate(source: str, message: str) -> tuple[int, int]:
    """Where the name Jinja's message quotes (an unknown variable, filter or attribute) first
    stands in the template: (line, column)."""
    quoted = _QUOTED.findall(message)
    for name in quoted:
        found = re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", source)
        if found is not None:
            return _line_column(source, found.start())
    return 1, 0


def _column(source: str, error: TemplateSyntaxError) -> int:
    """The column of a syntax error: where the innermost tag or expression on the error's line
    starts (Jinja reports only the line)."""
    lines = source.splitlines() or [""]
    text = lines[min(max(error.lineno, 1), len(lines)) - 1]
    starts = [m.start() for m in re.finditer(r"\{\{|\{%|\{#", text)]
    quoted = _QUOTED.findall(error.message or "")
    for name in quoted:
        at = text.find(name)
        if at >= 0:
            return at + 1
    return (starts[-1] + 1) if starts else 1


def _line_column(source: str, offset: int) -> tuple[int, int]:
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column
