"""The ``people_aliases`` block: the names one person goes by. Reading it, and what the schema
cannot say about it (a name in two groups)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.config.model import KeyPath, PeopleAliases, Problem, format_key_path
from sidecar.config.yamlfile.source import LineMap

_ONE_PERSON = "a name belongs to one person (list every alias under one name)"


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

    keys: dict[str, str] = {}  # casefolded name -> the key as written
    for name in spec:
        first = keys.setdefault(str(name).casefold(), str(name))
        if first != str(name):
            add(("people_aliases", name), f"{name!r} is {first!r} again: write each name once")
    owner: dict[str, str] = {}  # casefolded alias -> the group (its key) that has it
    for name, aliases in spec.items():
        for position, alias in enumerate(aliases if isinstance(aliases, list) else []):
            if not isinstance(alias, str):
                continue
            path: KeyPath = ("people_aliases", name, position)
            folded = alias.casefold()
            if folded in keys and folded != str(name).casefold():
                add(path, f"{alias!r} has aliases of its own here: {_ONE_PERSON}")
                continue
            first = owner.setdefault(folded, str(name))
            if first.casefold() != str(name).casefold():
                add(path, f"{alias!r} already names {first!r} here: {_ONE_PERSON}")
    return problems
