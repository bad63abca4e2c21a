"""The ``people_aliases`` block: the names one person goes by. Reading it, and what the schema
cannot say about it (a name in two groups)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.config.model import KeyPath, PeopleAliases, Problem, format_key_path
from sidecar.config.yamlsource import LineMap


def read_aliases(spec: Mapping[str, Any]) -> PeopleAliases:
    """The aliases of a schema-valid ``people_aliases`` mapping (an alias equal to its own
    name is dropped)."""
    groups = []
    for name, aliases in spec.items():
        others = [str(a) for a in aliases if str(a).casefold() != str(name).casefold()]
        groups.append((str(name), *dict.fromkeys(others)))
    return PeopleAliases(tuple(groups))


def alias_problems(data: Mapping[str, Any], lines: LineMap) -> list[Problem]:
    """Each name belongs to one group at most."""
    spec = data.get("people_aliases")
    if not isinstance(spec, dict):
        return []
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    owner: dict[str, str] = {}  # casefolded name -> the group (its key) that has it
    for name in spec:
        first = owner.setdefault(str(name).casefold(), str(name))
        if first != str(name):
            add(("people_aliases", name), f"{name!r} is {first!r} again: write each name once")
    for name, aliases in spec.items():
        for position, alias in enumerate(aliases if isinstance(aliases, list) else []):
            if not isinstance(alias, str):
                continue
            path: KeyPath = ("people_aliases", name, position)
            first = owner.setdefault(alias.casefold(), str(name))
            if first.casefold() != str(name).casefold():
                add(
                    path,
                    f"{alias!r} already names {first!r} here: a name belongs to one person "
                    "(list every alias under one name)",
                )
    return problems
