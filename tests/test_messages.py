"""The messages package: the sandbox, the filters in each language, the context's escape, the
config's templates over the built-in texts, Discord's limits (pure, no I/O)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sidecar.config.model import Batching
from sidecar.immich.models import PersonRef
from sidecar.messages.catalogs import UnknownLanguage, catalog_of
from sidecar.messages.environment import TemplateProblem, render_source
from sidecar.messages.posts import headline
from sidecar.messages.render import (
    CONTENT_LIMIT,
    EMBEDS_LIMIT,
    Words,
    custom,
    fit_embeds,
)
from sidecar.messages.templates import Templates
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.console import ConsoleSink
from sidecar.targets.discord.render.batch import render_batch
from sidecar.targets.http_webhook import batch_body
from tests.test_render import ALICE, BOB, EXTERNAL, make_asset

GERMAN = Words("de", "Europe/Berlin")


def batch(assets, words=GERMAN, *, rule="family", summary_over=20) -> Batch:
    return Batch(
        rule=rule,
        target="t",
        deliveries=tuple(Delivery(i + 1, rule, "t", a) for i, a in enumerate(assets)),
        batching=Batching(summary_over=summary_over),
        words=words,
        key="batch-key",
    )


# -- the sandbox -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ nope }}", "'nope' is undefined (template line 1, column 4)"),
        ("{{ count | shout }}", "No filter named 'shout'."),
        ("{{ ''.__class__ }}", "access to attribute '__class__' of 'str' object is unsafe."),
        ("{{ people.append('x') }}", "unsafe"),
        ("{% for p in people %}", "Unexpected end of template"),
        ("{{ ().__class__.__base__.__subclasses__() }}", "unsafe"),
    ],
)
def test_the_sandbox_refuses_what_a_template_may_not_do(template, message):
    with pytest.raises(TemplateProblem) as raised:
        render_source(template, {"people": ["Alice"], "count": 1})
    assert message in str(raised.value)


def test_a_problem_says_where_in_a_longer_template():
    with pytest.raises(TemplateProblem) as raised:
        render_source("Hallo\n  {{ people | names }} {{ oops }}", {"people": ["A"]})
    assert (raised.value.line, raised.value.column) == (2, 27)


# -- filters in each language ----------------------------------------------------------------


def test_names_dates_numbers_and_plurals_follow_the_language():
    taken = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # already the 8th in Berlin
    context = {"people": ["Alice", "Bob", "Carol"], "t": taken, "n": 1234567}
    template = (
        "{{ people | names }} · {{ t | date('long') }} · {{ t | datetime('short') }} · "
        "{{ n | number }} · {{ t | date('EEEE d. MMMM') }}"
    )
    assert render_source(template, context, "de", "Europe/Berlin") == (
        "Alice, Bob und Carol · 8. Dezember 2026 · 08.12.26, 00:30 · 1.234.567 · "
        "Dienstag 8. Dezember"
    )
    assert render_source("{{ people | names }}", context, "fr") == "Alice, Bob et Carol"
    assert render_source("{{ people | names }}", context, "en-GB") == "Alice, Bob and Carol"
    polish = "{% for n in [1, 3, 5, 22, 25] %}{{ n }} {{ plural(n, 'zdjęcie', 'zdjęć', "
    polish += "few='zdjęcia') }}; {% endfor %}"
    assert render_source(polish, {}, "pl") == (
        "1 zdjęcie; 3 zdjęcia; 5 zdjęć; 22 zdjęcia; 25 zdjęć; "
    )
    assert render_source("{{ 2 | plural('Foto', 'Fotos') }}", {}, "de") == "Fotos"
    assert render_source("{{ 3 | ago }} / {{ 1 | ago }}", {}, "de") == "vor 3 Jahren / vor 1 Jahr"


def test_a_language_the_sidecar_does_not_speak_is_refused_and_regions_fall_back():
    assert catalog_of("pt-BR") == "pt_BR"
    assert catalog_of("de-AT") == "de"
    assert catalog_of("sv-SE") == "sv"
    with pytest.raises(UnknownLanguage, match="no translation for 'ja'"):
        catalog_of("ja")
    with pytest.raises(UnknownLanguage, match="not a language tag"):
        catalog_of("xx-nope-")


# -- built-in texts and the config's templates -----------------------------------------------


def test_the_built_in_notification_is_german_with_its_plurals():
    one = render_batch(batch([make_asset(1)]), EXTERNAL, {})[0]
    three = render_batch(
        batch([make_asset(n, people=(ALICE, BOB)) for n in (1, 2, 3)]), EXTERNAL, {}
    )
    assert one.content == "Alice: 1 neues Foto"
    assert three[0].content == "Alice und Bob: 3 neue Fotos"
    assert three[0].embeds[0]["title"] == "Neues Foto mit Alice und Bob"
    assert [f["name"] for f in three[0].embeds[0]["fields"]] == [
        "Wer",
        "Aufgenommen",
        "Wo",
        "Regel",
    ]
    video = render_batch(batch([make_asset(4, kind="VIDEO")]), EXTERNAL, {})[0]
    assert video.content == "Alice: 1 neues Video"
    assert video.embeds[0]["description"].startswith("🎬 Das ist ein Video")


def test_a_content_template_renders_exactly_and_values_from_immich_cannot_ping_or_format():
    words = replace(GERMAN, templates=Templates(content=("{{ people | names }} 💕 {{ count }}",)))
    loud = make_asset(1, people=(PersonRef("x", "@everyone"), PersonRef("y", "**x**"), ALICE))
    [message] = render_batch(batch([loud], words), EXTERNAL, {})
    assert message.content == "\\*\\*x\\*\\*, @\u200beveryone und Alice 💕 1"
    assert message.allowed_mentions == {
        "parse": [],
        "roles": [],
        "users": [],
        "replied_user": False,
    }
    # JSON readers get the names as they are: only Discord reads markdown.
    assert batch_body(batch([loud], words), EXTERNAL)["text"] == "**x**, @everyone und Alice 💕 1"


def test_a_list_of_contents_picks_one_per_message_the_same_on_a_retry():
    words = replace(GERMAN, templates=Templates(content=("A {{ count }}", "B {{ count }}", "C")))
    picked = {custom(words, "content", {"count": 1}, seed=f"batch-{n}") for n in range(40)}
    assert picked == {"A 1", "B 1", "C"}
    again = [custom(words, "content", {"count": 1}, seed="batch-7") for _ in range(5)]
    assert len(set(again)) == 1


def test_title_description_and_footer_templates_go_into_the_embed():
    templates = Templates(
        title="{{ assets[0].city }}: {{ assets[0].taken_at | date('d. MMMM y') }}",
        description="{{ assets[0].file_name }}",
        footer="Regel {{ rule }}",
    )
    [message] = render_batch(
        batch([make_asset(1)], replace(GERMAN, templates=templates)), EXTERNAL, {}
    )
    [embed] = message.embeds
    assert embed["title"] == "Lyon: 1. Mai 2024"
    assert embed["description"] == "IMG\\_1.jpg"  # Discord-escaped: a file name is not markdown
    assert embed["footer"] == {"text": "Regel family"}
    assert message.content == "Alice: 1 neues Foto"  # no content template: the built-in


async def test_json_webhook_and_console_gain_the_text_beside_their_fields(tmp_path):
    import io

    words = replace(GERMAN, templates=Templates(title="Neu: {{ count }}"))
    body = batch_body(batch([make_asset(1), make_asset(2)], words), EXTERNAL)
    assert body["text"] == "Alice: 2 neue Fotos" and body["title"] == "Neu: 2"
    assert body["assets"][0]["people"] == ["Alice"]  # the machine-readable part is unchanged
    out = io.StringIO()
    await ConsoleSink(EXTERNAL, out).send(batch([make_asset(1)], GERMAN))
    line = json.loads(out.getvalue())
    assert line["text"] == "Alice: 1 neues Foto" and line["asset_id"] == "asset-1"


def test_posts_speak_each_language():
    memory = {"message": "memory_year", "year": 2023, "years_ago": 3, "count": 1}
    birthday = {"message": "birthday", "person": "Alice", "age": 36}
    assert headline(memory, GERMAN) == "📅 Heute vor 3 Jahren (2023): 1 Foto"
    assert headline({**memory, "count": 3}, Words("fr")) == (
        "📅 Il y a 3 ans jour pour jour (2023) : 3 photos"
    )
    assert headline(birthday, Words("pl")) == "🎂 Alice kończy dziś 36 lat"
    assert headline({**birthday, "age": 22}, Words("pl")) == "🎂 Alice kończy dziś 22 lata"
    digest = {
        "message": "digest",
        "period": "since",
        "since": "2026-01-03",
        "count": 1200,
        "ranking": [["Alice", 1000]],
    }
    assert (
        headline(digest, Words("nl")) == "Sinds 3 januari 2026: 1.200 nieuwe foto's — Alice 1.000"
    )
    assert (
        headline(
            {"message": "memory_years", "years": [[2025, 1], [2023, 3]], "count": 6}, Words("es")
        )
        == "📅 Un día como hoy: hace 1 año (2025) y hace 3 años (2023): 6 fotos"
    )


# -- Discord's limits ------------------------------------------------------------------------


def test_texts_past_discords_limits_are_cut_with_an_ellipsis():
    long = Templates(
        content=("{{ 'x' * 5000 }}",),
        title="{{ 'y' * 300 }}",
        description="{{ 'z' * 5000 }}",
        footer="{{ 'f' * 3000 }}",
    )
    [message] = render_batch(batch([make_asset(1)], replace(GERMAN, templates=long)), EXTERNAL, {})
    assert len(message.content) == CONTENT_LIMIT and message.content.endswith("…")
    [embed] = message.embeds
    assert len(embed["title"]) == 256 and embed["title"].endswith("…")
    assert len(embed["footer"]["text"]) == 2048
    assert len(embed["description"]) <= 4096
    many = fit_embeds([{"title": "t", "description": "d" * 4000} for _ in range(4)])
    assert [len(e["description"]) for e in many] == [4000, 1996, 0, 0]
    assert sum(len(e["title"]) + len(e["description"]) for e in many) == EMBEDS_LIMIT
    assert many[1]["description"].endswith("…")


def test_a_template_that_fails_on_real_data_falls_back_to_the_built_in_text(caplog):
    words = replace(GERMAN, templates=Templates(content=("{{ assets[5].city }}",)))
    [message] = render_batch(batch([make_asset(1)], words), EXTERNAL, {})
    assert message.content == "Alice: 1 neues Foto"
    assert "could not be rendered" in caplog.text


def test_the_default_words_are_english():
    b = Batch("family", "t", (Delivery(1, "family", "t", make_asset(1)),))
    [message] = render_batch(b, EXTERNAL, {})
    assert message.content == "Alice: 1 new photo"
