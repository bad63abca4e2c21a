"""Check requests and responses against the published Immich OpenAPI specs.

The specs live outside the project, in ``<repo>/../shared/immich/`` (they are AGPL reference
data: read, never copied). Tests call ``require_spec(version)``, which skips with a clear
reason where that folder is absent, then ``validate_request`` / ``validate_response`` (or
``validate_httpx_request`` for a captured ``httpx.Request``). Both raise ``ContractError``
listing every problem found.

OpenAPI 3.0 schemas become JSON Schema 2020-12: ``nullable`` turns into a type list (or an
``anyOf`` with null), boolean ``exclusiveMinimum`` into the numeric form. Request bodies are
checked strictly (no property the spec does not name), responses leniently (servers add
fields).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEC_DIR = REPO_ROOT.parent / "shared" / "immich"
SPEC_VERSIONS = ("2.7.3", "3.0.3")
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


class ContractError(AssertionError):
    """A request or response that the spec does not allow."""


def spec_path(version: str) -> Path:
    return SPEC_DIR / f"immich-openapi-specs-{version}.json"


def missing_reason(version: str) -> str | None:
    """Why the spec of ``version`` cannot be used here, or None when it can."""
    path = spec_path(version)
    if not path.is_file():
        return f"Immich OpenAPI spec {version} not found at {path} (../shared/immich is absent)"
    return None


def require_spec(version: str) -> Spec:
    """The loaded spec, or skip the calling test with a clear reason."""
    reason = missing_reason(version)
    if reason is not None:
        pytest.skip(reason)
    return load_spec(version)


@dataclass
class Spec:
    version: str
    document: dict[str, Any]
    base_path: str  # "/api": the servers[0] url the paths hang off
    lenient: dict[str, Any]  # components for responses
    strict: dict[str, Any]  # components for requests: additionalProperties false
    _templates: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    def find(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(template, operation, path params) for a request path such as /api/people/x."""
        if not path.startswith(self.base_path + "/"):
            raise ContractError(f"{path} is not under {self.base_path}")
        relative = path[len(self.base_path) :]
        for pattern, template in self._templates:
            match = pattern.match(relative)
            if match:
                operation = self.document["paths"][template].get(method.lower())
                if operation is None:
                    continue
                return template, operation, match.groupdict()
        raise ContractError(f"{self.version}: no operation {method.upper()} {relative}")


@cache
def load_spec(version: str) -> Spec:
    document = json.loads(spec_path(version).read_text(encoding="utf-8"))
    components = document.get("components", {})
    templates = []
    # Literal paths before templated ones, so /people/statistics never matches /people/{id}.
    for template in sorted(document["paths"], key=lambda t: (t.count("{"), t)):
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        templates.append((re.compile(f"^{regex}$"), template))
    servers = document.get("servers") or [{"url": ""}]
    return Spec(
        version=version,
        document=document,
        base_path=str(servers[0]["url"]).rstrip("/"),
        lenient=_convert(components, strict=False),
        strict=_convert(components, strict=True),
        _templates=templates,
    )


def _convert(node: Any, *, strict: bool) -> Any:
    """OpenAPI 3.0 schema (tree) to JSON Schema 2020-12."""
    if isinstance(node, list):
        return [_convert(item, strict=strict) for item in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: _convert(v, strict=strict)
        for k, v in node.items()
        if not k.startswith("x-") and k not in ("nullable", "example", "discriminator")
    }
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        flag = out.get(bound)
        if isinstance(flag, bool):
            del out[bound]
            if flag and limit in out:
                out[bound] = out.pop(limit)
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if node.get("nullable") is True:
        if "type" in out and "allOf" not in out and "$ref" not in out:
            out["type"] = [out["type"], "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


_FORMATS = FormatChecker()


@_FORMATS.checks("date-time")
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or bool(_RFC3339.match(value))


def _schema_errors(
    spec: Spec, schema: dict[str, Any], value: object, *, strict: bool, where: str
) -> list[str]:
    components = spec.strict if strict else spec.lenient
    root = {**_convert(schema, strict=strict), "components": components}
    validator = Draft202012Validator(root, format_checker=_FORMATS)
    problems = []
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
        location = "/".join(str(p) for p in error.absolute_path)
        problems.append(f"{where}{'/' + location if location else ''}: {error.message[:300]}")
    return problems


def _resolve(spec: Spec, schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec.document["components"]["schemas"][name]
    return schema


def _coerce(spec: Spec, schema: dict[str, Any], text: str) -> object:
    """A query/path string as the JSON value its schema describes (or the text itself)."""
    kind = _resolve(spec, schema).get("type")
    try:
        if kind == "integer":
            return int(text)
        if kind == "number":
            return float(text) if "." in text else int(text)
    except ValueError:
        return text
    if kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    return text


def validate_request(
    spec: Spec,
    method: str,
    path: str,
    query: Mapping[str, str],
    json_body: object | None,
    multipart_fields: set[str] | None,
    *,
    multipart_values: Mapping[str, str] | None = None,
) -> None:
    """A request (path under /api) against the spec: path and query parameters known and
    typed, JSON body valid (no unknown properties), multipart with every required field
    and no unknown one. ``multipart_values`` (text fields) are checked against their schema."""
    template, operation, path_values = spec.find(method, path)
    where = f"{spec.version} {method.upper()} {template}"
    problems: list[str] = []
    parameters = {(p["in"], p["name"]): p for p in operation.get("parameters", [])}

    for name, value in path_values.items():
        param = parameters.get(("path", name))
        if param is None:
            problems.append(f"{where}: undocumented path parameter {name}")
            continue
        problems += _schema_errors(
            spec,
            param.get("schema", {}),
            _coerce(spec, param.get("schema", {}), value),
            strict=True,
            where=f"{where} path {name}",
        )

    for name, value in query.items():
        param = parameters.get(("query", name))
        if param is None:
            problems.append(f"{where}: unknown query parameter {name!r}")
            continue
        schema = param.get("schema", {})
        problems += _schema_errors(
            spec, schema, _coerce(spec, schema, value), strict=True, where=f"{where} query {name}"
        )
    for (kind, name), param in parameters.items():
        if kind == "query" and param.get("required") and name not in query:
            problems.append(f"{where}: missing required query parameter {name!r}")

    content = operation.get("requestBody", {}).get("content", {})
    body_required = bool(operation.get("requestBody", {}).get("required"))
    if json_body is not None:
        if "application/json" not in content:
            problems.append(f"{where}: takes no JSON body")
        else:
            problems += _schema_errors(
                spec,
                content["application/json"]["schema"],
                json_body,
                strict=True,
                where=f"{where} body",
            )
    if multipart_fields is not None:
        if "multipart/form-data" not in content:
            problems.append(f"{where}: takes no multipart body")
        else:
            schema = _resolve(spec, content["multipart/form-data"]["schema"])
            known = set(schema.get("properties", {}))
            for name in sorted(set(schema.get("required", [])) - multipart_fields):
                problems.append(f"{where}: multipart field {name!r} is required")
            for name in sorted(multipart_fields - known):
                problems.append(f"{where}: unknown multipart field {name!r}")
            for name, value in (multipart_values or {}).items():
                prop = schema.get("properties", {}).get(name)
                if prop is not None and prop.get("format") != "binary":
                    problems += _schema_errors(
                        spec,
                        prop,
                        _coerce(spec, prop, value),
                        strict=True,
                        where=f"{where} field {name}",
                    )
    if json_body is None and multipart_fields is None and body_required:
        problems.append(f"{where}: a request body is required")
    if problems:
        raise ContractError("\n".join(problems))


def validate_response(spec: Spec, method: str, path: str, status: int, body: object) -> None:
    """A response body (parsed JSON, or None / bytes for non-JSON) for a request path."""
    template, operation, _ = spec.find(method, path)
    where = f"{spec.version} {method.upper()} {template} -> {status}"
    responses = operation.get("responses", {})
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        raise ContractError(f"{where}: status not documented (has {sorted(responses)})")
    content = response.get("content") or {}
    if "application/json" in content:
        problems = _schema_errors(
            spec, content["application/json"]["schema"], body, strict=False, where=where
        )
        if problems:
            raise ContractError("\n".join(problems))
    elif content and not isinstance(body, bytes | None):
        raise ContractError(f"{where}: expected binary content ({sorted(content)})")


def multipart_parts(request: httpx.Request) -> dict[str, bytes]:
    """The fields of a multipart/form-data request, by name."""
    content_type = request.headers.get("content-type", "")
    raw = request.read()
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts[str(name)] = payload if isinstance(payload, bytes) else b""
    return parts


def validate_httpx_request(spec: Spec, request: httpx.Request) -> None:
    """``validate_request`` for a captured request (respx ``route.calls`` or a fake server)."""
    query: dict[str, str] = {}
    for name, value in request.url.params.multi_items():
        if name in query:
            raise ContractError(f"query parameter {name!r} repeated")
        query[name] = value
    content_type = request.headers.get("content-type", "")
    json_body: object | None = None
    fields: set[str] | None = None
    values: dict[str, str] | None = None
    if content_type.startswith("application/json"):
        json_body = json.loads(request.read())
    elif content_type.startswith("multipart/form-data"):
        parts = multipart_parts(request)
        fields = set(parts)
        values = {k: v.decode("utf-8", "replace") for k, v in parts.items()}
    validate_request(
        spec, request.method, request.url.path, query, json_body, fields, multipart_values=values
    )
