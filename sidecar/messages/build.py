"""The build step that compiles the catalogs: setuptools runs ``BuildWithCatalogs`` instead of
its ``build_py`` (``[tool.setuptools.cmdclass]`` in pyproject.toml), so every wheel, and the
image built from one, carries each ``.po``'s ``.mo`` beside it; an editable install (``make
venv``) gets them in the source tree. ``python -m sidecar.messages.build`` does the same by
hand. The ``.mo`` files are build output, never committed (``catalogs`` compiles a missing or
stale one in memory, so a plain checkout still speaks every language)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from setuptools.command.build_py import build_py

# setuptools loads this module by its path, before the package can be imported: it imports
# nothing of the sidecar (``catalogs.compile_po`` does the same in memory at run time).
DOMAIN = "messages"
LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


def compile_po(po: Path) -> bytes:
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def compile_all(source: Path = LOCALES_DIR, target: Path | None = None) -> list[Path]:
    """Compile every ``<lang>/LC_MESSAGES/messages.po`` under ``source`` into ``target``
    (default: beside it); the ``.mo`` files written."""
    written = []
    for po in sorted(source.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = (target or source) / po.relative_to(source).with_suffix(".mo")
        mo.parent.mkdir(parents=True, exist_ok=True)
        mo.write_bytes(compile_po(po))
        written.append(mo)
    return written


class BuildWithCatalogs(build_py):  # type: ignore[misc]  # setuptools ships no types
    """``build_py`` that also compiles the catalogs into the build (or, editable, in place)."""

    def run(self) -> None:
        source = LOCALES_DIR
        compile_all(source)  # in place: the editable install and package data both see them
        super().run()
        if not getattr(self, "editable_mode", False):
            compile_all(source, Path(self.build_lib) / "sidecar" / "locales")


if __name__ == "__main__":
    for path in compile_all():
        print(path, file=sys.stderr)
