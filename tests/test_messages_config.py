"""``locale`` and ``messages:`` in the config: read into the settings, and every template
checked when the file loads, so check-config, doctor and a reload all name the bad one at its
line (file:line: rules[2].messages.content: Jinja's message and the column)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.config.messages import words_for
from sidecar.config.model import ConfigError
from sidecar.messages.templates import Templates

BASE = """\
immich:
  url: http://127.0.0.1:9
  api_key: key
locale: de
timezone: Europe/Berlin
targets:
  family: {console: true}
  famille: {console: true, locale: fr, messages: {footer: "{{ rule }}"}}
rules:
  - name: fine
    targets: [family, famille]
    messages:
      content: ["{{ people | names }} 💕 {{ count }}", "Neu: {{ count }}"]
      title: "{{ assets[0].taken_at | date('long') }}"
  - name: also-fine
    targets: [family]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_locales_and_templates_reach_the_settings(tmp_path):
    settings = load_settings(write(tmp_path, BASE))
    assert settings.locale == "de"
    fine = settings.rules[0]
    assert fine.messages.content == ("{{ people | names }} 💕 {{ count }}", "Neu: {{ count }}")
    german = words_for(settings, "family", fine.messages)
    french = words_for(settings, "famille", fine.messages)
    assert (german.locale, french.locale) == ("de", "fr")
    assert french.templates.footer == "{{ rule }}" and german.templates.footer is None
    assert french.templates.title == fine.messages.title  # the rule's own keys win
    assert words_for(settings, "family", Templates(), "sv").locale == "sv"  # a post's locale


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ('"{{ nobody }}"', 20, "'nobody' is undefined (template line 1, column 4)"),
        ('"{{ count | shout }}"', 20, "No filter named 'shout'."),
        ('"{{ count "', 20, "unexpected end of template"),
        ("\"{{ ''.__class__ }}\"", 20, "access to attribute '__class__' of 'str' object is unsafe"),
    ],
)
def test_check_config_names_a_bad_template_at_its_line(tmp_path, capsys, template, line, message):
    bad = BASE + f"  - name: bad\n    targets: [family]\n    messages:\n      content: {template}\n"
    path = write(tmp_path, bad)
    assert main(["check-config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: rules[2].messages.content: " in err
    assert message in err
    assert "Traceback" not in err


def test_a_list_item_an_album_rule_and_a_post_are_checked_as_what_they_write(tmp_path):
    bad = BASE + (
        "  - name: holiday\n    targets: [famille]\n    albums: {any: [Urlaub]}\n"
        "    messages: {content: ['{{ album.name }}', '{{ album.owner }}']}\n"
        "  - name: no-album\n    targets: [family]\n    messages: {title: '{{ album.name }}'}\n"
        "posts:\n  - name: bday\n    kind: birthdays\n    cron: '0 8 * * *'\n"
        "    targets: [family]\n"
        "    locale: xx\n    messages: {content: '{{ person }} {{ year }}'}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, bad))
    lines = raised.value.lines()
    assert any(
        "rules[2].messages.content[1]: 'dict object' has no attribute 'owner'" in x
        and "in an album rule's message" in x
        for x in lines
    ), lines
    assert any("rules[3].messages.title: 'None' has no attribute 'name'" in x for x in lines)
    assert any("posts[0].locale: 'xx' is not a language tag" in x for x in lines)
    assert any(
        "posts[0].messages.content: 'year' is undefined" in x and "in a birthdays post" in x
        for x in lines
    ), lines


def test_a_language_without_a_catalog_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, BASE.replace("locale: de", "locale: ja")))
    [line] = raised.value.lines()
    assert line.startswith(f"{tmp_path / 'config.yaml'}:4: locale: no translation for 'ja'")
    assert "de, en, es, fr, it, nl, pl, pt-BR, sv" in line


def test_doctor_says_the_same(tmp_path, capsys):
    bad = BASE + "  - name: bad\n    targets: [family]\n    messages: {content: '{{ nobody }}'}\n"
    path = write(tmp_path, bad)
    assert main(["doctor", "-c", str(path)]) == 2
    assert "rules[2].messages.content: 'nobody' is undefined" in capsys.readouterr().err
