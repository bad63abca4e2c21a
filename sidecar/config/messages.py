"""``locale`` (top level, per target, per post) and ``messages:`` (per rule, album rule, post,
and a default per target): read into the settings, and checked when the config loads. Each
template is compiled and rendered once against sample data of every kind of message it will
write, in the language it will be written in, so a bad template is a config error at its line
(``config.yaml:14: rules[2].messages.content: 'nope' is undefined (template line 1, column
4)``) and never a failure at send time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sidecar.config.checks import zone_of
from sidecar.config.model import KeyPath, Problem, Settings, TargetWords, format_key_path
from sidecar.config.yamlfile.source import LineMap
from sidecar.messages.catalogs import UnknownLanguage, catalog_of
from sidecar.messages.checks import template_problems
from sidecar.messages.render import Words
from sidecar.messages.templates import KEYS, Templates

DEFAULT_LOCALE = "en"


def read_templates(spec: Mapping[str, Any] | None) -> Templates:
    if not isinstance(spec, Mapping):
        return Templates()
    content = spec.get("content")
    contents = tuple(content) if isinstance(content, list) else (content,) if content else ()
    return Templates(
        content=tuple(str(c) for c in contents),
        title=spec.get("title"),
        description=spec.get("description"),
        footer=spec.get("footer"),
    )


def target_words(data: Mapping[str, Any]) -> dict[str, TargetWords]:
    targets = data.get("targets") or {}
    return {
        name: TargetWords(spec.get("locale"), read_templates(spec.get("messages")))
        for name, spec in targets.items()
        if isinstance(spec, Mapping) and ("locale" in spec or "messages" in spec)
    }


def words_for(
    settings: Settings, target: str, templates: Templates, locale: str | None = None
) -> Words:
    """How a rule's or post's messages to ``target`` are worded: the post's locale, else the
    target's, else the top-level one; the rule's or post's templates over the target's."""
    own = settings.target_words.get(target, TargetWords())
    return Words(
        locale=locale or own.locale or settings.locale,
        timezone=settings.timezone,
        templates=templates.over(own.messages),
    )


def message_problems(data: Mapping[str, Any], lines: LineMap, timezone: str) -> list[Problem]:
    """Every locale the sidecar cannot speak and every template that fails, at its line."""
    found = list(_locale_problems(data))
    found += _template_problems(data, timezone if zone_of(timezone) else "UTC")
    return [Problem(lines.line_of(path), format_key_path(path), message) for path, message in found]


def _locale_problems(data: Mapping[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    places: list[tuple[KeyPath, Any]] = [(("locale",), data.get("locale"))]
    for name, spec in _mapping(data.get("targets")).items():
        places.append((("targets", name, "locale"), _mapping(spec).get("locale")))
    for index, post in enumerate(_list(data.get("posts"))):
        places.append((("posts", index, "locale"), _mapping(post).get("locale")))
    for path, value in places:
        if isinstance(value, str):
            try:
                catalog_of(value)
            except UnknownLanguage as error:
                yield path, str(error)


def _speaks(*tags: Any) -> str:
    """The first tag of these that the sidecar speaks (a bad one is reported on its own)."""
    for tag in tags:
        if isinstance(tag, str):
            try:
                catalog_of(tag)
                return tag
            except UnknownLanguage:
                continue
    return DEFAULT_LOCALE


def _template_problems(data: Mapping[str, Any], timezone: str) -> Iterator[tuple[KeyPath, str]]:
    """The rules', posts' and targets' templates, each in every language it is sent in."""
    top = data.get("locale")
    targets = _mapping(data.get("targets"))
    kinds_of_target: dict[str, set[str]] = {}

    def check(
        where: KeyPath, spec: Any, kind: str, target_names: Any, own: Any = None
    ) -> Iterator[tuple[KeyPath, str]]:
        names = [t for t in _list(target_names) if isinstance(t, str)]
        for name in names:
            kinds_of_target.setdefault(name, set()).add(kind)
        tags = {_speaks(own, _mapping(targets.get(n)).get("locale"), top) for n in names} or {
            _speaks(own, top)
        }
        if isinstance(spec, Mapping):
            yield from _check(where, spec, kind, sorted(tags), timezone)

    for index, rule in enumerate(_list(data.get("rules"))):
        rule = _mapping(rule)
        kind = "album" if "albums" in rule else "rule"
        yield from check(
            ("rules", index, "messages"), rule.get("messages"), kind, rule.get("targets")
        )
    for index, post in enumerate(_list(data.get("posts"))):
        post = _mapping(post)
        kind = str(post.get("kind", "memories"))
        where = ("posts", index, "messages")
        yield from check(where, post.get("messages"), kind, post.get("targets"), post.get("locale"))
    for name, spec in targets.items():
        spec = _mapping(spec)
        if isinstance(spec.get("messages"), Mapping):
            tag = _speaks(spec.get("locale"), top)
            for kind in sorted(kinds_of_target.get(name) or {"rule"}):
                yield from _check(
                    ("targets", name, "messages"), spec["messages"], kind, [tag], timezone
                )


def _check(
    where: KeyPath, spec: Mapping[str, Any], kind: str, tags: list[str], timezone: str
) -> Iterator[tuple[KeyPath, str]]:
    templates = read_templates(spec)
    seen: set[tuple[str, int]] = set()
    for tag in tags:
        for key, index, problem in template_problems(templates, kind, Words(tag, timezone)):
            if (key, index) in seen:
                continue
            seen.add((key, index))
            path = (*where, key, index) if isinstance(spec.get(key), list) else (*where, key)
            yield path, f"{problem}{_in_kind(kind)}"


def _in_kind(kind: str) -> str:
    return {
        "album": " in an album rule's message",
        "memories": " in a memories post",
        "birthdays": " in a birthdays post",
        "digest": " in a digest post",
    }.get(kind, "")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


__all__ = ["KEYS", "message_problems", "read_templates", "target_words"]
