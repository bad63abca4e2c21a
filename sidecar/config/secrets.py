"""Secrets from the config or from the files it names, by key path; each target kind names its
own secret keys.
"""

from __future__ import annotations

import dataclasses
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sidecar.config.model import (
    KeyPath,
    Problem,
    Secret,
    format_key_path,
)
from sidecar.config.yamlfile.source import LineMap
from sidecar.targets.registry import kind_for_spec

MAX_SECRET_FILE_BYTES = 64 * 1024
_HTTP_URL = re.compile(r"^https?://[^\s/?#]+(/\S*)?$")


class SecretResolver:
    """Secrets from the config or from the files it names, as Secret values by key path."""

    def __init__(self, data: dict[str, Any], lines: LineMap, base: Path) -> None:
        self.values: dict[KeyPath, Secret] = {}
        self.problems: list[Problem] = []
        self._lines = lines
        self._base = base
        immich = data.get("immich")
        discord = data.get("discord")
        targets = data.get("targets")
        self._take(immich, ("immich",), "api_key")
        accounts = immich.get("accounts") if isinstance(immich, dict) else None
        for name, account in accounts.items() if isinstance(accounts, dict) else []:
            self._take(account, ("immich", "accounts", name), "api_key")
        self._take(discord, ("discord",), "token")
        self._take(data.get("push"), ("push",), "secret")
        self._take(data.get("ui"), ("ui",), "password")
        for name, target in targets.items() if isinstance(targets, dict) else []:
            kind = kind_for_spec(target) if isinstance(target, dict) else None
            for key in kind.secrets if kind is not None else ():
                section: object = target
                for part in key.path[:-1]:
                    section = section.get(part) if isinstance(section, dict) else None
                self._take(
                    section, ("targets", name, *key.path[:-1]), key.path[-1], must_be_url=key.url
                )

    def _take(self, section: object, path: KeyPath, key: str, must_be_url: bool = False) -> None:
        if not isinstance(section, dict):
            return
        inline = section.get(key)
        file_name = section.get(f"{key}_file")
        if isinstance(inline, str) and inline and file_name is None:
            self.values[(*path, key)] = Secret(inline)
        elif isinstance(file_name, str) and file_name and inline is None:
            where = (*path, f"{key}_file")
            value, reason = self._read(file_name)
            if reason is None and must_be_url and not _HTTP_URL.match(value):
                reason = f"secret file {file_name} does not hold an http:// or https:// URL"
            if reason is not None:
                line = self._lines.line_of(where)
                self.problems.append(Problem(line, format_key_path(where), reason))
            else:
                self.values[(*path, key)] = Secret(value)

    def _read(self, file_name: str) -> tuple[str, str | None]:
        path = Path(file_name)
        if not path.is_absolute():
            path = self._base / path
        try:
            if not stat.S_ISREG(path.stat().st_mode):
                return "", f"cannot read secret file {file_name}: not a regular file"
            with path.open("rb") as handle:
                raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
        except OSError as exc:
            return "", f"cannot read secret file {file_name}: {exc.strerror or type(exc).__name__}"
        if len(raw) > MAX_SECRET_FILE_BYTES:
            return "", f"secret file {file_name} is too large"
        try:
            value = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return "", f"secret file {file_name} is not UTF-8 text"
        if not value:
            return "", f"secret file {file_name} is empty"
        return value, None


def secret_values(value: object) -> set[str]:
    """Every secret held anywhere in ``value`` (settings, a section, a target), revealed: what
    output meant for people must mask (``sidecar.masking.mask_secrets``)."""
    found: set[str] = set()
    stack, seen = [value], set()
    while stack:
        item = stack.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, Secret):
            found.add(item.reveal())
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, f.name) for f in dataclasses.fields(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, tuple | list | frozenset | set):
            stack.extend(item)
    return found
