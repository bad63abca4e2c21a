"""docs/reference/configuration.md, written from the config schema: one section per top-level
key, one entry per key with its type, default, description and examples."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml

from tests.schemagen.walk import Key, Schema, keys, resolve

PAGE = "docs/reference/configuration.md"
HEADER = """\
# Configuration reference

<!-- Generated from sidecar/config.schema.json by `make schema`; edit the schema, not this page. -->

Every key of the config file, in the order of the schema (`sidecar/config.schema.json`, which
`immich-sidecar schema` prints and `check-config` applies). How the file is read, `${VAR}` and
secrets: [Configuration](../configuration.md). A key marked *one of* belongs to a group of
which exactly one must be set. `NAME` stands for a name you choose (a target, an account);
`[]` for each entry of a list.
"""

_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "`true` or `false`",
    "array": "a list",
    "object": "a mapping",
    "null": "`null`",
}


def render(root: Schema) -> str:
    parts = [HEADER]
    for key in keys(root):
        parts.append(_entry(key, root))
    return "".join(parts)


def _entry(key: Key, root: Schema) -> str:
    schema = key.schema
    level = "##" if "." not in key.path else "###"  # a section per top-level key
    lines = [f"\n{level} `{key.path}` {{#{key.anchor}}}\n"]
    if "description" in schema:
        lines.append(f"\n{_sentence(schema['description'])}\n")
    lines.append(f"\n- **Type**: {type_of(schema, root)}")
    if key.required:
        lines.append("\n- **Required**")
    if key.choice:
        others = ", ".join(f"`{name}`" for name in key.choice)
        lines.append(f"\n- **One of** {others}: exactly one is needed")
    if "default" in schema:
        lines.append(f"\n- **Default**: {_inline(key.name, schema['default'])}")
    examples = schema.get("examples", [])
    if examples:
        label = "Example" if len(examples) == 1 else "Examples"
        shown = ", ".join(_inline(key.name, example) for example in examples)
        lines.append(f"\n- **{label}**: {shown}")
    lines.append("\n")
    return "".join(lines)


def type_of(schema: Schema, root: Schema) -> str:
    """What a value must be, in words: the schema's own errorMessage where it says so."""
    if "const" in schema:
        return f"`{_flow(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{_flow(v)}`" for v in schema["enum"])
    words = _kind(schema, root)
    bounds = list(_bounds(schema))
    return f"{words} ({', '.join(bounds)})" if bounds else words


def _kind(schema: Schema, root: Schema) -> str:
    custom = schema.get("errorMessage")
    if isinstance(custom, str) and custom.startswith("expected "):
        return custom.removeprefix("expected ")
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if types == ["array"] and isinstance(schema.get("items"), dict):
        return _list_of(type_of(resolve(schema["items"], root), root))
    if "object" in types and isinstance(schema.get("additionalProperties"), dict):
        entry = resolve(schema["additionalProperties"], root)
        if "properties" not in entry:
            return f"a mapping of names to {type_of(entry, root)}"
    return " or ".join(_TYPES.get(t, t) for t in types) or "any value"


def _bounds(schema: Schema) -> Iterable[str]:
    # A custom message says what the value is; its numeric range is no news then (snowflakes).
    custom = "errorMessage" in schema
    low, high = (None, None) if custom else (schema.get("minimum"), schema.get("maximum"))
    if low is not None and high is not None:
        yield f"{low} to {high}"
    elif low is not None:
        yield f"at least {low}"
    elif high is not None:
        yield f"at most {high}"
    if schema.get("minLength", 0) > 1:
        yield f"at least {schema['minLength']} characters"
    if "maxLength" in schema:
        yield f"at most {schema['maxLength']} characters"
    if schema.get("minItems", 0) >= 1 or schema.get("minProperties", 0) >= 1:
        yield "not empty"
    if schema.get("uniqueItems"):
        yield "no repeats"
    if "maxDuration" in schema:  # the sidecar's own keyword: the longest a duration may be
        yield f"at most {schema['maxDuration']}"
    if isinstance(schema.get("not"), dict) and "errorMessage" in schema["not"]:
        yield schema["not"]["errorMessage"]


def _list_of(item: str) -> str:
    if item.startswith("text"):
        return "a list of texts" + item.removeprefix("text")
    if item.startswith("a mapping"):
        return "a list of mappings" + item.removeprefix("a mapping")
    return f"a list, each {item}"


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", ")")) else text + "."


def _flow(value: Any) -> str:
    """A value as it is written in the YAML file, on one line."""
    dumped = yaml.safe_dump(
        value, default_flow_style=True, width=1000, allow_unicode=True, sort_keys=False
    )
    return dumped.removesuffix("\n...\n").strip()


def _inline(name: str, value: Any) -> str:
    return f"`{name}: {_flow(value)}`"
