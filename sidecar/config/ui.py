"""The status page's block (``ui:``): what the schema cannot say, and its settings.

Family photos are never served without a password: listening anywhere but on loopback, or
showing pictures, needs ``password`` or ``password_file``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any

from sidecar.config.model import KeyPath, Secret, UiSettings

LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def host_port(listen: str) -> tuple[str, int]:
    """``127.0.0.1:9189`` -> (``127.0.0.1``, 9189); ``[::1]:9189`` -> (``::1``, 9189)."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def host_of(listen: str) -> str:
    return listen.rpartition(":")[0].strip("[]")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name that may resolve to anything


def ui_problems(data: Mapping[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    """(key path, message) for what the schema cannot say about ``ui:``."""
    ui = data.get("ui")
    if not isinstance(ui, dict):
        return
    password = "password" in ui or "password_file" in ui
    if "password" in ui and "password_file" in ui:
        yield ("ui", "password_file"), "give password or password_file, not both"
    listen = ui.get("listen")
    off_loopback = isinstance(listen, str) and not is_loopback(host_of(listen))
    if off_loopback and not password:
        yield (
            ("ui", "listen"),
            f"{listen} is not a loopback address, so the status page needs ui.password or "
            "ui.password_file (it shows your accounts, rules and deliveries); listen on "
            "127.0.0.1 or set a password",
        )
    if ui.get("pictures") is True and not password:
        yield (
            ("ui", "pictures"),
            "showing pictures needs ui.password or ui.password_file: family photos are never "
            "served without a password",
        )


def read_ui(spec: Mapping[str, Any], password: Secret | None) -> UiSettings:
    """The settings of a ``ui:`` block that passed every check."""
    defaults = UiSettings()
    host, port = host_port(spec["listen"]) if "listen" in spec else (defaults.host, defaults.port)
    return UiSettings(
        host=host, port=port, password=password, pictures=bool(spec.get("pictures", False))
    )
