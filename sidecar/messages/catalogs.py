"""The gettext catalogs under ``sidecar/locales/<lang>/LC_MESSAGES/messages.po``: which
languages ship, a BCP 47 tag (``de``, ``pt-BR``) read into the catalog and CLDR locale it means,
and each language's translations, loaded once.

The build compiles each ``.po`` into its ``.mo`` (``make translations``, the wheel's build step,
the image). A checkout that has not been built yet, or a ``.po`` edited since, still works: the
``.po`` is compiled in memory, never written (the container's file system is read-only).
"""

from __future__ import annotations

import gettext
import io
from functools import cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
SOURCE_LOCALE = "en"  # the language of the msgids


class UnknownLanguage(ValueError):
    """A locale the sidecar cannot speak: not BCP 47, or no catalog for its language."""


def po_path(catalog: str) -> Path:
    return LOCALES_DIR / catalog / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache  # the catalogs are files of the installed package: they do not change while it runs
def shipped() -> tuple[str, ...]:
    """The catalogs that ship (``pt_BR`` style, as gettext names their folders), sorted."""
    found = {p.parent.parent.name for p in LOCALES_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")}
    return tuple(sorted(found | {SOURCE_LOCALE}))


def bcp47(catalog: str) -> str:
    """``pt_BR`` as a BCP 47 tag: ``pt-BR``."""
    return catalog.replace("_", "-")


@cache
def cldr_locale(tag: str) -> Locale:
    """The CLDR locale of a BCP 47 tag (``pt-BR``, ``de``, ``sv-SE``); ``UnknownLanguage``
    when CLDR does not know it."""
    try:
        return Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except (ValueError, TypeError, UnknownLocaleError) as error:
        raise UnknownLanguage(f"{tag!r} is not a language tag CLDR knows ({error})") from None


@cache
def catalog_of(tag: str) -> str:
    """The shipped catalog that speaks ``tag``: the exact one (``pt_BR``), else its language
    (``de-AT`` → ``de``); ``UnknownLanguage`` when none does."""
    locale = cldr_locale(tag)
    available = shipped()
    for wanted in (str(locale), locale.language):
        if wanted in available:
            return wanted
    for name in available:  # pt-PT still reads Brazilian Portuguese better than English
        if name.split("_")[0] == locale.language:
            return name
    raise UnknownLanguage(
        f"no translation for {tag!r}; the sidecar speaks "
        + ", ".join(bcp47(name) for name in available)
        + " (adding a language is one .po file: see the docs' translations page)"
    )


def compile_po(po: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` file (fuzzy entries left out, as ``pybabel compile``)."""
    with po.open("rb") as source:
        catalog = read_po(source, locale=po.parent.parent.name, domain=DOMAIN)
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def _mo_bytes(catalog: str) -> bytes:
    po = po_path(catalog)
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        return mo.read_bytes()
    return compile_po(po)  # not built yet, or edited since: compiled in memory


@cache
def translations(catalog: str) -> gettext.NullTranslations:
    """The translations of one shipped catalog (the source language's are the msgids)."""
    if catalog == SOURCE_LOCALE and not po_path(catalog).exists():
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(_mo_bytes(catalog)))
