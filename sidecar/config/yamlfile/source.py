"""Read a YAML config file into plain values, remembering the line of every key and value.

Hostile input is expected (a config is hand-written, sometimes pasted): the file size, nesting
depth, alias use and the number of values produced are bounded, and every failure becomes a
Problem with a line number instead of an exception. String scalars get ${VAR} expansion here,
before validation, so that errors about expanded values still point at the right line.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sidecar.config.model import KeyPath, Problem
from sidecar.config.model import format_key_path as _where
from sidecar.config.yamlfile.words import yaml_problem

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_ALIASES = 100
MAX_VALUES = 100_000

MISSING_CONFIG = (
    "no config file there. Name yours with -c PATH or the environment variable "
    "SIDECAR_CONFIG (without either, config/config.yaml is read, else ./config.yaml). To make "
    "one, run `immich-sidecar init` (it writes one from what your Immich has), or copy the "
    "project's config/config.local.yaml (on a laptop) or config/config.example.yaml (in "
    "Docker) to config/config.yaml"
)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_ENV_REFERENCE = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:-[^}]*)?\}|\$\{(?P<bad>[^}]*)\}?"
)


@dataclass
class LineMap:
    """Where each key path was written: the key's line and the value's line (1-based)."""

    key_lines: dict[KeyPath, int] = field(default_factory=dict)
    value_lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the key (or list item) at path, else of the nearest enclosing one."""
        while True:
            line = self.key_lines.get(path, self.value_lines.get(path))
            if line is not None or not path:
                return line
            path = path[:-1]


@dataclass
class Document:
    data: Any
    lines: LineMap
    problems: list[Problem]


class _TooLarge(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def read_config_bytes(path: Path) -> tuple[bytes | None, Problem | None]:
    """The file's bytes, or why they cannot be had (never more than MAX_FILE_BYTES)."""
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            return None, Problem(None, "", "cannot read: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            return None, Problem(None, "", "cannot read: not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        return None, Problem(None, "", MISSING_CONFIG)
    except OSError as exc:
        return None, Problem(None, "", f"cannot read: {exc.strerror or exc}")
    if len(data) > MAX_FILE_BYTES:
        return None, Problem(None, "", f"file too large (more than {MAX_FILE_BYTES} bytes)")
    return data, None


def decode(data: bytes) -> tuple[str | None, Problem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        byte = data[exc.start : exc.start + 1].hex()
        return None, Problem(line, "encoding", f"not valid UTF-8 (byte 0x{byte}); save as UTF-8")


def parse(text: str, environ: Mapping[str, str]) -> Document:
    """Plain values (dicts, lists, scalars) from YAML text, with lines and problems."""
    problem = _check_structure(text)
    if problem is not None:
        return Document(None, LineMap(), [problem])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return Document(None, LineMap(), [yaml_problem(exc, text)])
    except RecursionError:
        return Document(None, LineMap(), [Problem(None, "", f"nested more than {MAX_DEPTH} deep")])
    builder = _Builder(environ)
    if node is None:
        return Document(None, builder.lines, [])
    try:
        data = builder.build(node, ())
    except _TooLarge as exc:
        return Document(None, builder.lines, [exc.problem])
    return Document(data, builder.lines, builder.problems)


def _check_structure(text: str) -> Problem | None:
    """Depth and alias counts from the event stream, before anything recursive runs."""
    depth = 0
    aliases = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            line = event.start_mark.line + 1 if event.start_mark else None
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    return Problem(line, "structure", f"nested more than {MAX_DEPTH} deep")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > MAX_ALIASES:
                    return Problem(line, "structure", f"more than {MAX_ALIASES} YAML aliases (*)")
    except yaml.YAMLError as exc:
        return yaml_problem(exc, text)
    return None


class _Builder:
    """Walks composed nodes into plain values; shared (aliased) nodes count on every use."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.lines = LineMap()
        self.problems: list[Problem] = []
        self._constructor = yaml.SafeLoader("")
        self._values = 0
        self._open: set[int] = set()

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self._values += 1
        line = node.start_mark.line + 1
        if self._values > MAX_VALUES:
            raise _TooLarge(
                Problem(line, "structure", f"expands to more than {MAX_VALUES} values (aliases?)")
            )
        self.lines.value_lines.setdefault(path, line)
        if id(node) in self._open:
            raise _TooLarge(Problem(line, "structure", "an alias refers to itself"))
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, yaml.MappingNode)
            return self._mapping(node, path)
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            key_line = key_node.start_mark.line + 1
            if key in result:
                self.problems.append(
                    Problem(key_line, _where((*path, key)), f"duplicate key '{key}'")
                )
                continue
            self.lines.key_lines[(*path, key)] = key_line
            result[key] = self.build(value_node, (*path, key))
        for key_node, value_node in merged:
            key = self._key(key_node, path)
            if key is not None and key not in result:
                self.lines.key_lines[(*path, key)] = key_node.start_mark.line + 1
                result[key] = self.build(value_node, (*path, key))
        return result

    def _merge_sources(self, node: yaml.Node, path: KeyPath) -> list[tuple[yaml.Node, yaml.Node]]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        pairs: list[tuple[yaml.Node, yaml.Node]] = []
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                line = source.start_mark.line + 1
                self.problems.append(Problem(line, _where(path), "'<<' merges only mappings"))
                continue
            self._values += len(source.value)
            if self._values > MAX_VALUES:
                raise _TooLarge(Problem(source.start_mark.line + 1, "structure", "too many values"))
            pairs.extend(source.value)
        return pairs

    def _key(self, node: yaml.Node, path: KeyPath) -> str | None:
        if isinstance(node, yaml.ScalarNode):
            # The text as written: `yes:` or `123:` stay names instead of becoming bool/int.
            return str(node.value)
        line = node.start_mark.line + 1
        self.problems.append(Problem(line, _where(path), "a key must be plain text"))
        return None

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            value = self._constructor.construct_object(node, deep=True)
        except ValueError:  # e.g. an integer longer than Python converts
            self.problems.append(
                Problem(node.start_mark.line + 1, _where(path), "this value is too large to read")
            )
            return None
        except yaml.YAMLError as exc:
            reason = getattr(exc, "problem", None) or "cannot read this value"
            if "constructor for the tag" in reason:
                reason = f"unsupported YAML tag {node.tag}: use plain values, lists and mappings"
            self.problems.append(Problem(node.start_mark.line + 1, _where(path), reason))
            return None
        if node.tag == _STR_TAG and isinstance(value, str) and "$" in value:
            return self._expand(value, node.start_mark.line + 1, path)
        return value

    def _expand(self, text: str, line: int, path: KeyPath) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name = match.group("name")
            if name is None:
                message = "malformed ${...}: expected ${NAME} or ${NAME:-default}"
                self.problems.append(Problem(line, _where(path), message))
                return ""
            value = self.environ.get(name)
            default = match.group("default")
            if default is not None and not value:
                return default[2:]
            if value is None:
                self.problems.append(
                    Problem(line, _where(path), f"environment variable {name} is not set")
                )
                return ""
            return value

        return _ENV_REFERENCE.sub(replace, text)
