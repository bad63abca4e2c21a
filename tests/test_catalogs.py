"""Every shipped catalog against the source texts: no message missing or left fuzzy, the same
placeholders as the source, the language's CLDR plural forms, and each translation a template
that renders against sample data of every kind of message, with its Discord markdown intact.
Adding a language is one .po file: this test then checks it like the others."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from jinja2 import meta

from sidecar.messages.catalogs import LOCALES_DIR, bcp47, shipped
from sidecar.messages.environment import TemplateProblem, environment, render_source
from sidecar.messages.render import Words
from sidecar.messages.samples import MESSAGE_KINDS, sample_context

REQUIRED = {"en", "de", "fr", "es", "nl", "it", "pt_BR", "pl", "sv"}
KEYWORDS = {"T_": ((1, "c"), 2), "TP_": ((1, "c"), 2, 3), "locale_str": (1,)}
DESCRIPTION_LIMIT = 100  # Discord's limit for a command's or an option's description
SIDECAR = Path(__file__).resolve().parent.parent / "sidecar"


def read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as source:
        return read_po(source, locale=locale)


def key(message: Message) -> tuple[str | None, str]:
    msgid = message.id[0] if isinstance(message.id, tuple) else message.id
    return message.context, str(msgid)


def sources(message: Message) -> list[str]:
    return [str(m) for m in message.id] if isinstance(message.id, tuple) else [str(message.id)]


def forms(message: Message) -> list[str]:
    if isinstance(message.string, tuple):
        return [str(s) for s in message.string]
    return [str(message.string)]


def names_in(template: str) -> set[str]:
    return set(meta.find_undeclared_variables(environment().parse(template)))


TEMPLATE = read(LOCALES_DIR / "messages.pot")
SOURCE = {key(m): m for m in TEMPLATE if m.id}
CATALOGS = {
    name: read(LOCALES_DIR / name / "LC_MESSAGES" / "messages.po", name)
    for name in sorted(set(shipped()) - {"en"} | {"en"})
}


def test_every_required_language_ships_and_the_template_is_up_to_date():
    assert set(shipped()) >= REQUIRED
    extracted = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        SIDECAR,
        method_map=[("**.py", "python")],
        keywords=KEYWORDS,
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        extracted.add((context, msgid))
    assert extracted == set(SOURCE), "run `make translations`: messages.pot is stale"
    assert len(SOURCE) >= 90


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_a_catalog_has_every_message_translated(name):
    catalog = CATALOGS[name]
    found = {key(m): m for m in catalog if m.id}
    assert set(found) == set(SOURCE), f"{name}: run `make translations`, then translate"
    for message_key, message in found.items():
        assert "fuzzy" not in message.flags, (name, message_key)
        assert all(f.strip() for f in forms(message)), (name, message_key, "not translated")


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_plural_forms_follow_cldr(name):
    catalog = CATALOGS[name]
    cldr = get_plural(name)
    assert catalog.num_plurals == cldr.num_plurals
    assert catalog.plural_expr == cldr.plural_expr
    for message in catalog:
        if message.id and isinstance(message.id, tuple):
            assert len(forms(message)) == cldr.num_plurals, (name, key(message))


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_translations_use_the_source_placeholders_and_markdown(name):
    for message in CATALOGS[name]:
        if not message.id:
            continue
        wanted = set().union(*(names_in(s) for s in sources(message)))
        stars = {s.count("**") for s in sources(message)}
        for form in forms(message):
            used = names_in(form)
            assert used <= wanted, (name, key(message), used - wanted)
            assert form.count("**") in stars, (name, key(message), "markdown differs")
        used_anywhere = set().union(*(names_in(f) for f in forms(message)))
        # A singular may leave the number out ("jemand"); the forms together say everything.
        assert used_anywhere == wanted or wanted - used_anywhere <= {"count"}, (
            name,
            key(message),
            wanted - used_anywhere,
        )


@pytest.mark.parametrize("name", sorted(CATALOGS))
def test_every_translation_renders_against_every_kind_of_sample(name):
    words = Words(bcp47(name), "Europe/Berlin")
    contexts = [sample_context(kind, words) for kind in MESSAGE_KINDS]
    extra = {
        "name": "Alice",
        "reason": "a reason",
        "member": "<@1>",
        "approver": "<@2>",
        "channel": "<#3>",
        "status": "DMs on",
        "version": "v2.7.5",
        "when": "<t:0:R>",
        "ms": 42,
        "size": 212,
        "albums": ["Holiday (3 assets)"],
        "accounts": ["family", "grandma"],
        "ages": ["1 year ago (2025)"],
        "period": "This week",
        "ranking": "Alice 2",
    }
    for message in CATALOGS[name]:
        if not message.id:
            continue
        # Where the source renders (an album's text with an album), every form must too.
        fitting = [c for c in ({**extra, **c} for c in contexts) if _renders(sources(message), c)]
        assert fitting, key(message)
        for form in forms(message):
            for values in fitting:
                assert render_source(form, values, words.locale, words.timezone).strip()


def _renders(templates: list[str], values: dict[str, object]) -> bool:
    try:
        for template in templates:
            render_source(template, values)
    except TemplateProblem:
        return False
    return True


def test_command_descriptions_fit_discord():
    described = [m for m in TEMPLATE if m.id and m.context is None]
    assert len(described) >= 12
    for name, catalog in CATALOGS.items():
        for message in catalog:
            if message.id and message.context is None:
                assert len(forms(message)[0]) <= DESCRIPTION_LIMIT, (name, message.id)
