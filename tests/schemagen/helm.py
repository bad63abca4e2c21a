"""The chart's values schema takes the sidecar's own config schema as its ``config``.

Helm validates values.schema.json (draft-07 here, as the chart's schema has always said) with Go's
regexp, so the form written here is the config schema with:

- ``$defs`` hoisted into the values schema's ``definitions`` (``config-<name>``) and every
  ``$ref`` pointed there; a ``$ref`` with other keywords beside it becomes ``allOf`` (draft-07
  ignores a ``$ref``'s siblings);
- ``${VAR}`` allowed wherever a text is constrained (a pattern, a choice, a length): the sidecar
  reads the variable at start and checks the value then, as it does for its own file;
- what the chart fills in not required (``immich.url`` and its key, the push secret, a target
  when there is none), and the sidecar's own keywords (``errorMessage``, ``maxDuration``) left
  out: a duration past its maximum is refused by the sidecar when it starts, not by Helm.

Everything else (unknown keys, durations, types, bounds) is refused by ``helm template`` as the
sidecar would refuse it, naming the key.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.schemagen.walk import ROOT, Schema

VALUES_SCHEMA = ROOT / "helm" / "immich-discord-sidecar" / "values.schema.json"
PREFIX = "config-"
ENV_REFERENCE = r"\$\{"  # a value that reads the environment; checked by the sidecar at start
CONFIG_DESCRIPTION = (
    "The sidecar's config file (generated from sidecar/config.schema.json by `make schema`). "
    "The chart fills in immich.url, immich.api_key, discord.token, state, metrics and push.listen."
)


def values_schema(config_schema: Schema, values: Schema) -> Schema:
    """The chart's values schema with ``config`` (and its definitions) from the config schema."""
    out = copy.deepcopy(values)
    defs = config_schema.get("$defs", {})
    definitions = {k: v for k, v in out.get("definitions", {}).items() if not k.startswith(PREFIX)}
    definitions.update({PREFIX + name: _form(schema) for name, schema in defs.items()})
    config = {k: v for k, v in config_schema.items() if k not in ("$schema", "$id", "$defs")}
    config = _relax(_form(config))
    config.pop("title", None)
    config["description"] = CONFIG_DESCRIPTION
    out["properties"]["config"] = config
    out["definitions"] = dict(sorted(definitions.items()))
    return out


def render(config_schema: Schema) -> str:
    values = json.loads(VALUES_SCHEMA.read_text(encoding="utf-8"))
    return json.dumps(values_schema(config_schema, values), indent=2, ensure_ascii=False) + "\n"


_NAMED = ("properties", "$defs", "definitions", "patternProperties")
# The sidecar's own keywords, which Helm's validator does not know: a message, and a duration's
# longest value (the sidecar refuses a longer one when it starts).
_SIDECAR_KEYWORDS = ("errorMessage", "maxDuration")


def _form(node: Any) -> Any:
    """A schema (or a part of one) in the form Helm validates: see the module's docstring."""
    if isinstance(node, list):
        return [_form(item) for item in node]
    if not isinstance(node, dict):
        return node
    schema: Schema = {}
    for keyword, value in node.items():
        if keyword in _NAMED:  # a mapping of names (of keys, of definitions) to schemas
            schema[keyword] = {name: _form(sub) for name, sub in value.items()}
        elif keyword == "not" and isinstance(value, dict):
            # not X, where X now also takes ${VAR}: still let ${VAR} through (not X, or ${VAR})
            schema[keyword] = {"allOf": [_form(value), {"not": {"pattern": ENV_REFERENCE}}]}
        elif keyword not in _SIDECAR_KEYWORDS:
            schema[keyword] = _form(value)
    if "$ref" in schema:
        target = {"$ref": "#/definitions/" + PREFIX + schema.pop("$ref").removeprefix("#/$defs/")}
        if not schema:
            return target
        schema = {"allOf": [target], **schema}
    return _with_env_references(schema)


def _with_env_references(schema: Schema) -> Schema:
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "pattern" in schema and (not types or "string" in types):
        return {**schema, "pattern": f"(?:{schema['pattern']})|{ENV_REFERENCE}"}
    choices = schema.get("enum", [schema["const"]] if "const" in schema else [])
    text_choice = any(isinstance(choice, str) for choice in choices)
    if text_choice or ("string" in types and schema.get("minLength", 0) > 1):
        return {"anyOf": [schema, {"type": "string", "pattern": ENV_REFERENCE}]}
    return schema


def _relax(config: Schema) -> Schema:
    """Not required what the chart's configmap template fills in."""
    config.pop("required", None)
    properties = config.get("properties", {})
    for section in ("immich", "push"):
        properties.get(section, {}).pop("required", None)
        properties.get(section, {}).pop("oneOf", None)
    properties.get("targets", {}).pop("minProperties", None)
    return config
