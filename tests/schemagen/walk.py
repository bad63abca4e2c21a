"""Every key of the config schema, in the schema's order, with its ``$ref`` resolved: what the
reference page is written from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "sidecar" / "config.schema.json"

Schema = dict[str, Any]


def load_schema() -> Schema:
    schema: Schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return schema


@dataclass(frozen=True)
class Key:
    path: str  # as a person reads it: "rules[].people.any", "targets.NAME.channel_id"
    schema: Schema  # the value's schema, ``$ref`` resolved and the key's own words over it
    required: bool  # the enclosing mapping requires it
    choice: tuple[str, ...]  # the keys of which exactly one is needed, when it is one of them

    @property
    def anchor(self) -> str:
        return self.path.replace("[]", "").replace(".", "-").lower()

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1].removesuffix("[]")


def resolve(schema: Schema, root: Schema) -> Schema:
    """The schema with its ``$ref`` (to ``#/$defs/...``) merged in; the referring schema's own
    keywords (its description, an extra pattern) win."""
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    name = ref.removeprefix("#/$defs/")
    target = resolve(root["$defs"][name], root)
    return {**target, **{k: v for k, v in schema.items() if k != "$ref"}}


def keys(root: Schema) -> Iterator[Key]:
    yield from _mapping(root, "", root)


def _choices(schema: Schema) -> list[tuple[str, ...]]:
    """Groups of keys of which one is needed: ``oneOf: [{required: [a]}, {required: [b]}]``."""
    branches = schema.get("oneOf", [])
    names = tuple(name for b in branches for name in b.get("required", []) if len(b) == 1)
    return [names] if names and len(names) == len(branches) else []


def _mapping(schema: Schema, prefix: str, root: Schema) -> Iterator[Key]:
    required = set(schema.get("required", []))
    choices = _choices(schema)
    for name, sub in schema.get("properties", {}).items():
        value = resolve(sub, root)
        path = f"{prefix}{name}"
        choice = next((group for group in choices if name in group), ())
        yield Key(path, value, name in required, choice)
        yield from _inside(value, path, root)


def _inside(value: Schema, path: str, root: Schema) -> Iterator[Key]:
    """The keys under a value: a mapping's keys, a list's items' keys, a map's entries' keys."""
    if "properties" in value:
        yield from _mapping(value, f"{path}.", root)
        return
    items = value.get("items")
    if isinstance(items, dict):
        item = resolve(items, root)
        if "properties" in item:
            yield from _mapping(item, f"{path}[].", root)
        return
    entries = value.get("additionalProperties")
    if isinstance(entries, dict):
        entry = resolve(entries, root)
        if "properties" in entry:
            yield from _mapping(entry, f"{path}.NAME.", root)
