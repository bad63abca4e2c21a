"""``immich-sidecar preview RULE_OR_POST`` and the texts ``dry-run`` prints: each target's
message as it would be sent, in its language, from sample data or an asset of Immich's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.engine.preview import said_lines
from sidecar.immich.models import Asset, PersonRef
from tests.fakes.fake_immich import FakeImmich

CONFIG = """\
immich:
  url: {url}
  api_key: {key}
  external_url: https://photos.example.com
locale: de
timezone: Europe/Berlin
targets:
  family: {{webhook_url: "https://discord.com/api/webhooks/1/token"}}
  famille: {{console: true, locale: fr}}
  hook: {{http: {{url: "https://example.test/hook"}}}}
rules:
  - name: kids
    people: {{any: [Alice, Bob]}}
    targets: [family, famille, hook]
  - name: hearts
    people: {{any: [Carol]}}
    targets: [family]
    messages: {{content: "{{{{ people | names }}}} 💕 {{{{ count }}}}", footer: "{{{{ rule }}}}"}}
posts:
  - {{name: birthdays, kind: birthdays, cron: "0 8 * * *", targets: [family, famille]}}
"""


def write(tmp_path: Path, url: str = "http://127.0.0.1:9", key: str = "key") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(url=url, key=key))
    return path


def blocks(text: str) -> list[tuple[str, list[Any]]]:
    """The preview's output: a '# rule -> target' line, then the JSON messages."""
    found: list[tuple[str, list[Any]]] = []
    decoder = json.JSONDecoder()
    for part in text.split("# ")[1:]:
        header, _, rest = part.partition("\n")
        messages, rest = [], rest.strip()
        while rest:
            value, end = decoder.raw_decode(rest)
            messages.append(value)
            rest = rest[end:].strip()
        found.append((header, messages))
    return found


def test_preview_shows_each_target_its_own_payload_in_its_language(tmp_path, capsys):
    assert main(["preview", "-c", str(write(tmp_path)), "kids"]) == 0
    (discord, [payload]), (console, lines), (hook, [body]) = blocks(capsys.readouterr().out)
    assert discord == "kids -> family (de, sample data)"
    assert payload["content"] == "Alice: 3 neue Fotos und Videos"
    assert payload["allowed_mentions"]["parse"] == []
    assert console == "kids -> famille (fr, sample data)"
    assert {line["text"] for line in lines} == {"Alice : 3 nouvelles photos et vidéos"}
    assert hook.startswith("kids -> hook (de")
    assert body["version"] == 1 and body["text"] == "Alice: 3 neue Fotos und Videos"


def test_preview_of_a_post_in_another_language(tmp_path, capsys):
    assert main(["preview", "-c", str(write(tmp_path)), "birthdays", "--locale", "pl"]) == 0
    [(header, [payload]), (_, lines)] = blocks(capsys.readouterr().out)
    assert header == "birthdays -> family (pl, sample data)"
    assert payload["content"] == "🎂 Alice kończy dziś 36 lat"
    assert {line["text"] for line in lines} == {"🎂 Alice kończy dziś 36 lat"}  # one per picture


def test_preview_refuses_an_unknown_name_or_language(tmp_path, capsys):
    path = str(write(tmp_path))
    assert main(["preview", "-c", path, "nope"]) == 2
    assert "no rule or post named 'nope'; there are: kids, hearts, birthdays" in (
        capsys.readouterr().err
    )
    assert main(["preview", "-c", path, "kids", "--locale", "ja"]) == 2
    assert "--locale: no translation for 'ja'" in capsys.readouterr().err


async def test_preview_of_an_asset_from_immich(tmp_path, capsys):
    async with FakeImmich() as immich:
        carol = immich.add_person("Carol")
        asset = immich.add_asset(created_at=datetime.now(UTC), people=[carol])
        path = write(tmp_path, immich.url, immich.api_key)
        # preview runs its own event loop, as the command line does
        code = await asyncio.to_thread(
            main, ["preview", "-c", str(path), "hearts", "--asset", asset]
        )
    assert code == 0
    [(header, [payload])] = blocks(capsys.readouterr().out)
    assert header == f"hearts -> family (de, asset {asset})"
    assert payload["content"] == "Carol 💕 1"
    assert payload["embeds"][0]["footer"] == {"text": "hearts"}


def test_dry_run_says_each_message_in_each_targets_language(tmp_path):
    settings = load_settings(write(tmp_path))
    taken = datetime(2026, 6, 13, tzinfo=UTC)

    def asset(n: int, *names: str) -> Asset:
        people = tuple(PersonRef(f"p-{name}", name) for name in names)
        return Asset(f"a{n}", "IMAGE", taken, taken, f"IMG_{n}.jpg", "timeline", False, people)

    found = [
        ("kids", asset(1, "Alice"), None),
        ("kids", asset(2, "Alice"), None),
        ("hearts", asset(3, "Carol", "@everyone"), None),
    ]
    lines = said_lines(settings, found)
    assert lines == [
        "kids says in family (de): Alice: 2 neue Fotos",
        "kids says in famille (fr): Alice : 2 nouvelles photos",
        "kids says in hook (de): Alice: 2 neue Fotos",
        "hearts says in family (de): @\u200beveryone und Carol 💕 1",
    ]
