"""The config's JSON Schema (``sidecar/config.schema.json``, the one source of what a file may
contain) and its errors in words a person can act on.
"""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    ValidationError,
    validators,
)

from sidecar.config.durations import is_duration, within
from sidecar.config.model import (
    KeyPath,
    Problem,
    format_key_path,
)
from sidecar.config.yamlfile.source import LineMap
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


def _max_duration(
    _validator: Any, maximum: str, instance: Any, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """``maxDuration``: the longest a duration key takes (a duration text like ``30d``)."""
    if isinstance(instance, str) and is_duration(instance) and not within(instance, maximum):
        yield ValidationError(f"longer than {maximum}")


# Draft 2020-12 with the one keyword of the sidecar's own.
_Validator = validators.extend(Draft202012Validator, {"maxDuration": _max_duration})


@functools.cache
def _validator() -> Draft202012Validator:
    schema = json.loads(schema_text())
    Draft202012Validator.check_schema(schema)
    return _Validator(schema)


# --- schema errors, in words a person can act on -------------------------------------------


def schema_problems(data: dict[str, Any], lines: LineMap) -> Iterator[Problem]:
    for error in _validator().iter_errors(data):
        yield from _translate(error, lines)


@dataclass(frozen=True)
class _Failure:
    """One schema error, as the translations below read it."""

    path: KeyPath  # where the failing value is
    kind: str  # the failing keyword: "type", "required", ...
    expected: Any  # that keyword's value in the schema
    value: Any
    schema: dict[str, Any]  # the (sub)schema the keyword is in
    custom: str | None  # its errorMessage: what the value means ("a duration like 30s")
    of_a_name: bool  # the value is a key's name (failing propertyNames)


# Bounds, by keyword: the message for the bound in the schema.
_BOUNDS: dict[str, Callable[[Any], str]] = {
    "minLength": lambda n: "must not be empty" if n == 1 else f"needs {n}+ characters",
    "maxLength": lambda n: f"is longer than {n} characters",
    "minItems": lambda n: "needs at least one entry" if n == 1 else f"needs {n} entries",
    "maxItems": lambda n: f"has more than {n} entries",
    "minimum": lambda n: f"must be at least {n}",
    "maximum": lambda n: f"must be at most {n}",
    "minProperties": lambda n: "needs at least one entry",
}


def _translate(error: ValidationError, lines: LineMap) -> Iterator[Problem]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    failure = _Failure(
        path=tuple(error.absolute_path),
        kind=error.validator,
        expected=error.validator_value,
        value=error.instance,
        schema=schema,
        custom=schema.get("errorMessage"),
        of_a_name="propertyNames" in error.relative_schema_path,
    )
    found = _key_problems(failure)
    if found is None:
        found = [(failure.path, _value_problem(failure))]
    for where, message in found:
        yield Problem(lines.line_of(where), format_key_path(where), message)


def _key_problems(failure: _Failure) -> list[tuple[KeyPath, str]] | None:
    """What is wrong with the keys of a mapping, each at the key it is about; None for an error
    about something else."""
    path, expected, value = failure.path, failure.expected, failure.value
    if failure.of_a_name:
        where = (*path, str(value))
        return [(where, f"'{value}' is not a valid name: {failure.custom or 'bad format'}")]
    if not isinstance(value, dict):
        return None
    if failure.kind == "additionalProperties":
        allowed = list(failure.schema.get("properties", {}))
        return [
            ((*path, key), f"'{key}' is not allowed here{suggest(key, allowed)}")
            for key in value
            if key not in allowed
        ]
    if failure.kind == "required":
        return [(path, f"missing required key '{key}'") for key in expected if key not in value]
    if failure.kind == "oneOf":
        keys = [key for branch in expected for key in branch.get("required", [])]
        present = [key for key in keys if key in value]
        if not present:
            return [(path, f"needs one of {_either(keys)}")]
        return [((*path, present[-1]), f"{' and '.join(present)} are both set; use only one")]
    return None


def _value_problem(failure: _Failure) -> str:
    """What is wrong with the value at the failure's path, in words."""
    kind, expected, value, custom = failure.kind, failure.expected, failure.value, failure.custom
    if kind == "type":
        return _type_problem(failure)
    if kind == "enum":
        choices = ", ".join(str(choice) for choice in expected)
        return f"expected one of {choices}{_shown(value, failure.path)}"
    if kind == "not" and isinstance(expected, dict):
        return str(expected.get("errorMessage", "is not allowed here"))
    if kind == "uniqueItems" and isinstance(value, list):
        repeated = next((i for n, i in enumerate(value) if i in value[:n]), "a value")
        return f"'{repeated}' is listed twice"
    if kind == "maxDuration":
        return f"must be at most {expected} (got {str(value)[:40]})"
    if kind in ("pattern", "const", "minimum", "maximum", "minProperties") and custom:
        return f"{custom}{_shown(value, failure.path) if kind == 'pattern' else ''}"
    if kind in _BOUNDS:
        return _BOUNDS[kind](expected)
    # Fallback without jsonschema's message, which would echo the value (maybe a secret).
    return f"is not valid here (fails the schema's '{kind}' check)"


def _type_problem(failure: _Failure) -> str:
    expected, value = failure.expected, failure.value
    wanted = [expected] if isinstance(expected, str) else list(expected)
    names = " or ".join(_JSON_TYPES.get(name, name) for name in wanted)
    hint = " (put it in quotes)" if isinstance(value, bool) and "string" in wanted else ""
    if _is_duration(failure.schema) and type(value) is int:
        hint = f": add a unit, e.g. {value}s (seconds) or {value}m (minutes)"
    # A custom message says what the value means ("a duration like 30s"), not only its type.
    return f"{failure.custom or 'expected ' + names}, got {describe_kind(value)}{hint}"


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
