"""The status page's HTML: one autoescaping Jinja2 environment of its own (the templates in
``sidecar/ui/templates``), rendered with the data of ``/api/status`` and the explain box's answer.

No script runs on the page: it refreshes itself with a ``<meta http-equiv="refresh">`` (not
while it shows an answer of the explain box), and its one stylesheet is served from the same
origin, so ``Content-Security-Policy: default-src 'self'`` holds.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from sidecar.engine.explain.verdict import Explanation, verdict_line, zone_named

REFRESH_SECONDS = 30


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("sidecar.ui", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["verdict_line"] = verdict_line
    return env


def when(value: str | None, zone_name: str, now: str) -> str:
    """An ISO time as the page shows it: ``14:02`` today, ``2026-05-01 14:02`` another day."""
    if not value:
        return "never"
    zone = zone_named(zone_name)
    moment = datetime.fromisoformat(value).astimezone(zone)
    today = datetime.fromisoformat(now).astimezone(zone).date()
    return f"{moment:%H:%M}" if moment.date() == today else f"{moment:%Y-%m-%d %H:%M}"


def render_page(
    data: dict[str, Any],
    *,
    asset: str = "",
    answer: Explanation | None = None,
    problem: str | None = None,
    pictures: bool = False,
) -> str:
    """The page; ``asset`` is what the explain box was given, ``answer`` or ``problem`` what
    it said."""
    zone, now = data["timezone"], data["generated_at"]
    return (
        environment()
        .get_template("page.html")
        .render(
            data=data,
            asset=asset,
            answer=answer,
            answer_lines=answer.lines()[:2] if answer else [],
            problem=problem,
            pictures=pictures,
            refresh=None if asset else REFRESH_SECONDS,
            when=lambda value: when(value, zone, now),
        )
    )
