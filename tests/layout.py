"""The house rules of ``sidecar/``, checked by ``make lint`` (``python -m tests.layout``):

- no module over 400 lines, no function over 60 (``end_lineno - lineno + 1``);
- no folder with more than 12 modules (``__init__.py`` not counted);
- imports go one way: each area may import only the areas ``ALLOWED`` gives it (ARCHITECTURE.md
  draws the same table), at module level or inside a function.

``tests/test_layout.py`` plants one of each in a copy of a small tree and sees it fail.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_MODULES_PER_FOLDER = 12

# area -> the areas it may import (besides itself and the root package's ``__version__``).
# An area is a dotted prefix; a module belongs to the longest one that names it.
# sidecar.messages (templates, catalogs, the words of every message) is a base layer too: it
# knows only the Immich domain values, and every area that writes for people may use it.
_BASE = ("sidecar.clock", "sidecar.wording", "sidecar.masking", "sidecar.messages")
_CONFIG = (*_BASE, "sidecar.config")
ALLOWED: dict[str, tuple[str, ...]] = {
    "sidecar.clock": (),
    "sidecar.wording": (),
    "sidecar.masking": (),
    "sidecar.messages": ("sidecar.immich.models",),
    "sidecar.ops": (*_BASE, "sidecar.config.model"),
    # Each target kind reads its own config block: the loader asks the registry for it.
    "sidecar.config": (*_BASE, "sidecar.targets.registry"),
    "sidecar.immich": (*_CONFIG, "sidecar.ops"),
    "sidecar.targets": (*_CONFIG, "sidecar.ops", "sidecar.immich.models"),
    # The engine, from the bottom up: rules and the store know no other engine part; the
    # sources (uploads, albums, posts) and dispatch use those two; the top-level engine modules
    # (accounts, session, planning, reload, dry-run, the poll) tie them together.
    "sidecar.engine.rules": (*_CONFIG, "sidecar.immich.models"),
    "sidecar.engine.store": (*_BASE, "sidecar.immich.models", "sidecar.targets.base"),
    "sidecar.engine.dispatch": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.targets",
        "sidecar.engine.store",
    ),
    "sidecar.engine.albums": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets.base",
        "sidecar.engine.rules",
        "sidecar.engine.store",
    ),
    "sidecar.engine.uploads": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets.base",
        "sidecar.engine.rules",
        "sidecar.engine.store",
        "sidecar.engine.albums",  # the poll of new uploads runs the album rules' poll too
    ),
    "sidecar.engine.posts": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets.base",
        "sidecar.engine.rules",
        "sidecar.engine.store",
        "sidecar.engine.access",
    ),
    "sidecar.engine": (*_CONFIG, "sidecar.ops", "sidecar.immich", "sidecar.targets"),
    "sidecar.push": (*_CONFIG, "sidecar.ops", "sidecar.immich", "sidecar.engine"),
    "sidecar.discord": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets",
        "sidecar.engine.members",
        "sidecar.engine.posts",
        "sidecar.engine.status",  # /immich status shows the running sidecar's StatusInfo
        "sidecar.engine.store",
    ),
    # The status page reads the running sidecar's parts and explains with the engine's.
    "sidecar.ui": (*_CONFIG, "sidecar.ops", "sidecar.immich", "sidecar.targets", "sidecar.engine"),
    "sidecar.doctor": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets",
        "sidecar.engine",
        "sidecar.push",
        "sidecar.discord",
    ),
    # init asks Immich what is there (the client, the people and album look-ups the rules use)
    # and writes a config the loader reads back.
    "sidecar.init": (*_CONFIG, "sidecar.ops", "sidecar.immich", "sidecar.engine"),
    "sidecar.app": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets",
        "sidecar.engine",
        "sidecar.push",
        "sidecar.discord",
        "sidecar.ui",
    ),
    "sidecar.cli": (
        *_CONFIG,
        "sidecar.ops",
        "sidecar.immich",
        "sidecar.targets",
        "sidecar.engine",
        "sidecar.push",
        "sidecar.discord",
        "sidecar.doctor",
        "sidecar.app",
        "sidecar.init",
        "sidecar.ui",
    ),
    "sidecar.__main__": ("sidecar.cli",),
}


@dataclass(frozen=True)
class Problem:
    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


def area_of(module: str) -> str | None:
    names = [a for a in ALLOWED if module == a or module.startswith(a + ".")]
    return max(names, key=len) if names else None


def import_allowed(importer: str, imported: str) -> bool:
    if imported == "sidecar" or not imported.startswith("sidecar"):
        return True
    area = area_of(importer)
    if area is None:
        return True  # the package root, whose __init__ holds only the version
    if imported == area or imported.startswith(area + "."):
        return True
    return any(imported == a or imported.startswith(a + ".") for a in ALLOWED[area])


def _module_name(root: Path, path: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, known: set[str]) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # ``from sidecar.engine import store`` names a module
                full = f"{node.module}.{alias.name}"
                yield node.lineno, full if full in known else node.module


def problems(root: Path) -> list[Problem]:
    """Every breach of the house rules in the package at ``root`` (a ``sidecar/`` folder)."""
    files = sorted(root.rglob("*.py"))
    known = {_module_name(root, p) for p in files}
    found: list[Problem] = []
    per_folder: Counter[Path] = Counter()
    for path in files:
        rel = path.relative_to(root.parent).as_posix()
        source = path.read_text(encoding="utf-8")
        lines = source.count("\n")
        if lines > MAX_MODULE_LINES:
            found.append(Problem(rel, f"{lines} lines (at most {MAX_MODULE_LINES})"))
        tree = ast.parse(source, filename=rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(
                        Problem(
                            f"{rel}:{node.lineno}",
                            f"{node.name} is {length} lines (at most {MAX_FUNCTION_LINES})",
                        )
                    )
        module = _module_name(root, path)
        for line, imported in _imports(tree, known):
            if not import_allowed(module, imported):
                found.append(
                    Problem(
                        f"{rel}:{line}",
                        f"{area_of(module)} may not import {imported} (see ARCHITECTURE.md)",
                    )
                )
        if path.name != "__init__.py":
            per_folder[path.parent] += 1
    for folder, modules in sorted(per_folder.items()):
        if modules > MAX_MODULES_PER_FOLDER:
            rel = folder.relative_to(root.parent).as_posix()
            limit = MAX_MODULES_PER_FOLDER
            found.append(Problem(f"{rel}/", f"{modules} modules (at most {limit})"))
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "sidecar"
    found = problems(root)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
