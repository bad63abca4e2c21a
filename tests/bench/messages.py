"""(j) What messages cost: rendering one Discord message of ten photos (the built-in German
texts; the config's own templates), the first message in a language (its catalog read and
its environment made), checking a config's templates at load, and the catalogs' sizes."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from datetime import UTC, datetime

from babel.messages.pofile import read_po

from sidecar.immich.models import Asset, PersonRef
from sidecar.messages import catalogs
from sidecar.messages.checks import template_problems
from sidecar.messages.render import Words
from sidecar.messages.templates import Templates
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.discord.render.batch import render_batch
from tests.bench.report import Figure, spread

RENDER_TARGET_MS = 5.0  # a message of ten photos, well under a Discord round trip
SAMPLES = 200


def _batch(words: Words) -> Batch:
    taken = datetime(2026, 6, 13, 10, tzinfo=UTC)
    people = (PersonRef("a", "Alice"), PersonRef("b", "Bob"))
    assets = [
        Asset(f"asset-{n}", "IMAGE", taken, taken, f"IMG_{n}.JPG", "timeline", False, people,
              "Berlin", "Deutschland")
        for n in range(10)
    ]  # fmt: skip
    deliveries = tuple(Delivery(n, "kids", "family", a) for n, a in enumerate(assets))
    return Batch("kids", "family", deliveries, key="bench", words=words)


def _per_message(batch: Batch) -> list[float]:
    samples = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        render_batch(batch, "https://photos.example.com", {})
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def run(section: str) -> list[Figure]:
    started = time.perf_counter()
    render_batch(_batch(Words("sv", "Europe/Stockholm")), "https://photos.example.com", {})
    first = (time.perf_counter() - started) * 1000
    german = _per_message(_batch(Words("de", "Europe/Berlin")))
    own = Templates(
        content=("{{ people | names }} 💕 {{ count }}", "Neu: {{ count | number }} Fotos"),
        title="{{ assets[0].city }}, {{ assets[0].taken_at | date('long') }}",
        footer="{{ rule }}",
    )
    templated = _per_message(_batch(replace(Words("de", "Europe/Berlin"), templates=own)))
    checks = []
    for n in range(20):
        fresh = Templates(content=(f"{{{{ people | names }}}} {n} {{{{ count }}}}",))
        started = time.perf_counter()
        list(template_problems(fresh, "rule", Words("fr", "Europe/Paris")))
        checks.append((time.perf_counter() - started) * 1000)
    po = [p.stat().st_size for p in catalogs.LOCALES_DIR.glob("*/LC_MESSAGES/messages.po")]
    mo = [p.stat().st_size for p in catalogs.LOCALES_DIR.glob("*/LC_MESSAGES/messages.mo")]
    with (catalogs.LOCALES_DIR / "messages.pot").open("rb") as source:
        messages = sum(1 for m in read_po(source) if m.id)
    median = statistics.median(german)
    return [
        Figure(
            section,
            "render one Discord message of 10 photos, built-in German texts",
            spread(german, "ms", 2),
            f"< {RENDER_TARGET_MS:.0f} ms",
            median < RENDER_TARGET_MS,
        ),
        Figure(section, "the same with a content list, title and footer template",
               spread(templated, "ms", 2)),
        Figure(section, "first message in a language (catalog read, environment made)",
               f"{first:.1f} ms"),
        Figure(section, "check one new template at load (compile + sample render)",
               spread(checks, "ms", 2)),
        Figure(section, "catalogs shipped (.po / .mo, each)",
               f"{len(po)} languages, {messages} messages; .po {min(po) // 1024}-"
               f"{max(po) // 1024} KB, .mo {min(mo or [0]) // 1024}-{max(mo or [0]) // 1024} KB"),
    ]  # fmt: skip
