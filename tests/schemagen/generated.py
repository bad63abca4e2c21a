"""The files generated from the config schema, and whether each is up to date."""

from __future__ import annotations

from collections.abc import Callable

from tests.schemagen import helm, reference
from tests.schemagen.walk import ROOT, SCHEMA, load_schema

COMMAND = "make schema"


def _copy() -> str:
    return SCHEMA.read_text(encoding="utf-8")


def _reference() -> str:
    return reference.render(load_schema())


def _values_schema() -> str:
    return helm.render(load_schema())


# Each generated file (relative to the repository) and what it must hold.
GENERATED: dict[str, Callable[[], str]] = {
    "config/config.schema.json": _copy,
    reference.PAGE: _reference,
    helm.VALUES_SCHEMA.relative_to(ROOT).as_posix(): _values_schema,
}


def stale() -> list[str]:
    return [
        name
        for name, make in GENERATED.items()
        if not (ROOT / name).exists() or (ROOT / name).read_text(encoding="utf-8") != make()
    ]


def write() -> list[str]:
    written = []
    for name, make in GENERATED.items():
        text = make()  # before writing: the values schema reads its own file
        (ROOT / name).write_text(text, encoding="utf-8")
        written.append(name)
    return written
