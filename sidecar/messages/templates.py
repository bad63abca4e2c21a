"""A ``messages:`` block as the config gives it: the template sources of a message's
``content`` (one, or a list to pick from at random), ``title``, ``description`` and
``footer``. Plain strings: compiled templates are kept by ``environment.compiled``, so two
loads of the same file compare equal."""

from __future__ import annotations

from dataclasses import dataclass, fields

KEYS = ("content", "title", "description", "footer")


@dataclass(frozen=True)
class Templates:
    content: tuple[str, ...] = ()  # one is picked per message
    title: str | None = None
    description: str | None = None
    footer: str | None = None

    def sources(self, key: str) -> tuple[str, ...]:
        value = getattr(self, key)
        if value is None:
            return ()
        return value if isinstance(value, tuple) else (value,)

    def over(self, default: Templates) -> Templates:
        """These templates, with ``default``'s where these give none (a rule's over its
        target's)."""
        return Templates(
            **{f.name: getattr(self, f.name) or getattr(default, f.name) for f in fields(Templates)}
        )

    def __bool__(self) -> bool:
        return any(self.sources(key) for key in KEYS)
