"""The config's JSON Schema (``sidecar/config.schema.json``, the one source of what a file may
contain) and its errors in words a person can act on.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    ValidationError,
)

from sidecar.config.model import (
    KeyPath,
    Problem,
    format_key_path,
)
from sidecar.config.yamlsource import LineMap
from sidecar.targets.registry import KINDS

SCHEMA_RESOURCE = "config.schema.json"
SECRET_KEYS = frozenset({"api_key", "token"})  # outside targets; each target kind names its own
_JSON_TYPES = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "nothing (null)",
}


def schema_text() -> str:
    """The config JSON Schema exactly as shipped in the package."""
    # In the sidecar package (package data); a plain path works for wheels, editable and source
    # runs.
    return Path(__file__).parent.parent.joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --- schema errors, in words a person can act on -------------------------------------------


def schema_problems(data: dict[str, Any], lines: LineMap) -> Iterator[Problem]:
    for error in _validator().iter_errors(data):
        yield from _translate(error, lines)


def _translate(error: ValidationError, lines: LineMap) -> Iterator[Problem]:
    path: KeyPath = tuple(error.absolute_path)
    kind = error.validator
    expected: Any = error.validator_value
    value = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    custom = schema.get("errorMessage")

    def at(where: KeyPath, message: str) -> Problem:
        return Problem(lines.line_of(where), format_key_path(where), message)

    if "propertyNames" in error.relative_schema_path:
        yield at((*path, str(value)), f"'{value}' is not a valid name: {custom or 'bad format'}")
    elif kind == "additionalProperties" and isinstance(value, dict):
        allowed = list(schema.get("properties", {}))
        for key in value:
            if key not in allowed:
                yield at((*path, key), f"'{key}' is not allowed here{suggest(key, allowed)}")
    elif kind == "required" and isinstance(value, dict):
        for key in expected:
            if key not in value:
                yield at(path, f"missing required key '{key}'")
    elif kind == "type":
        wanted = [expected] if isinstance(expected, str) else list(expected)
        names = " or ".join(_JSON_TYPES.get(name, name) for name in wanted)
        hint = " (put it in quotes)" if isinstance(value, bool) and "string" in wanted else ""
        if _is_duration(schema) and type(value) is int:
            hint = f": add a unit, e.g. {value}s (seconds) or {value}m (minutes)"
        # A custom message says what the value means ("a duration like 30s"), not only its type.
        yield at(path, f"{custom or 'expected ' + names}, got {describe_kind(value)}{hint}")
    elif kind == "enum":
        choices = ", ".join(str(choice) for choice in expected)
        yield at(path, f"expected one of {choices}{_shown(value, path)}")
    elif kind == "oneOf" and isinstance(value, dict):
        keys = [key for branch in expected for key in branch.get("required", [])]
        present = [key for key in keys if key in value]
        if not present:
            yield at(path, f"needs one of {_either(keys)}")
        else:
            yield at((*path, present[-1]), f"{' and '.join(present)} are both set; use only one")
    elif kind == "not" and isinstance(expected, dict):
        yield at(path, expected.get("errorMessage", "is not allowed here"))
    elif kind == "uniqueItems" and isinstance(value, list):
        repeated = next((i for n, i in enumerate(value) if i in value[:n]), "a value")
        yield at(path, f"'{repeated}' is listed twice")
    elif kind in ("pattern", "const", "minimum", "maximum", "minProperties") and custom:
        yield at(path, f"{custom}{_shown(value, path) if kind == 'pattern' else ''}")
    elif kind == "minLength":
        yield at(path, "must not be empty" if expected == 1 else f"needs {expected}+ characters")
    elif kind == "maxLength":
        yield at(path, f"is longer than {expected} characters")
    elif kind == "minItems":
        yield at(path, "needs at least one entry" if expected == 1 else f"needs {expected} entries")
    elif kind == "maxItems":
        yield at(path, f"has more than {expected} entries")
    elif kind == "minimum":
        yield at(path, f"must be at least {expected}")
    elif kind == "maximum":
        yield at(path, f"must be at most {expected}")
    elif kind == "minProperties":
        yield at(path, "needs at least one entry")
    else:
        # Fallback without jsonschema's message, which would echo the value (maybe a secret).
        yield at(path, f"is not valid here (fails the schema's '{kind}' check)")


def _is_duration(schema: dict[str, Any]) -> bool:
    duration: dict[str, Any] = _validator().schema["$defs"]["duration"]
    return schema == duration


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (expected {_either(choices)})" if choices else ""


def _either(words: list[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"


def _shown(value: object, path: KeyPath) -> str:
    if _is_secret(path) or not isinstance(value, str | int | float):
        return ""
    return f", got '{value}'"


def _is_secret(path: KeyPath) -> bool:
    if any(part in SECRET_KEYS for part in path if isinstance(part, str)):
        return True
    inner = path[2:] if path[:1] == ("targets",) else ()
    return any(inner[: len(key.path)] == key.path for kind in KINDS for key in kind.secrets)


def describe_kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"
