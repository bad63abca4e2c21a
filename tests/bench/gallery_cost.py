"""(i) What one batch costs in each layout: the messages it becomes, the bytes of each, and the
requests to Immich and to Discord, for photos (previews of 250 KB, a phone photo's), videos,
shared links and a 413. The webhook target's sink runs against the fake Immich and the fake
Discord on 127.0.0.1 (the real httpx and Immich clients)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from sidecar.config.model import Secret
from sidecar.engine.access import FeatureAccess
from sidecar.engine.shared_links import SharedLinks
from sidecar.engine.store.database import Store
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Asset
from sidecar.immich.permissions import SHARED_LINKS
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import Batch, Delivery
from sidecar.targets.discord.webhook import WebhookSink, WebhookTarget
from sidecar.targets.presentation import Presentation
from tests.bench.report import Figure
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

MIB = 1024 * 1024
PREVIEW = 250 * 1024
Setup = Callable[[FakeImmich], list[str]]


def photos(n: int, size: int = PREVIEW) -> Setup:
    return lambda immich: [immich.add_asset(preview_size=size) for _ in range(n)]


def videos(*sizes: int) -> Setup:
    return lambda immich: [immich.add_asset(type="VIDEO", video_size=s) for s in sizes]


def heavy(immich: FakeImmich) -> list[str]:
    return videos(4 * MIB, 4 * MIB, 4 * MIB)(immich) + photos(2, 3 * MIB)(immich)


CASES: list[tuple[str, Setup, dict[str, object]]] = [
    ("5 photos, gallery", photos(5), {}),
    ("5 photos, embeds", photos(5), {"layout": "embeds"}),
    ("12 photos, gallery", photos(12), {}),
    ("12 photos, embeds", photos(12), {"layout": "embeds"}),
    ("25 photos (a summary), gallery", photos(25), {}),
    ("videos of 3 and 30 MB, gallery", videos(3 * MIB, 30 * MIB), {}),
    ("3 videos of 4 MiB + 2 photos of 3 MiB, gallery", heavy, {}),
    ("5 photos, gallery, links: shared", photos(5), {"links": "shared"}),
    ("5 photos, gallery, Discord answers 413 once", photos(5), {"fail": 413}),
]


async def measure(setup: Setup, options: dict[str, object], tmp: Path) -> dict[str, object]:
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        async with FakeImmich() as immich:
            ids = setup(immich)
            url = discord.add_webhook(fd.PHOTOS_CHANNEL)
            fail = options.pop("fail", None)
            if fail:
                discord.fail("POST", "/" + url.split("/api/v10/")[1], int(str(fail)))
            async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
                assets = [await client.asset(i) for i in ids]
                immich.reset_requests()
                await _send(client, url, assets, options, tmp)
            return {
                "messages": len(discord.messages_in(fd.PHOTOS_CHANNEL)),
                "sizes": [m.size for m in discord.messages_in(fd.PHOTOS_CHANNEL)],
                "immich": len(immich.requests),
                "discord": sum(1 for r in discord.requests if r.method == "POST"),
            }
    finally:
        await discord.stop()


async def _send(
    client: ImmichClient, url: str, assets: list[Asset], options: dict[str, object], tmp: Path
) -> None:
    store = Store.open(tmp / "state.db")
    access = FeatureAccess(Metrics())
    access.use([SHARED_LINKS])
    access.granted(["all"])
    links = SharedLinks(store, lambda: [client], access)
    presentation = Presentation(
        layout=str(options.get("layout", "gallery")), links=str(options.get("links", "immich"))
    )
    target = WebhookTarget("family", Secret(url), presentation=presentation)
    sink = WebhookSink(target, client, "https://photos.example.test", Metrics(), shared_links=links)
    batch = Batch(
        "kids",
        "family",
        tuple(Delivery(n + 1, "kids", "family", a) for n, a in enumerate(assets)),
        key="bench",
    )
    try:
        await sink.send(batch)
    finally:
        await sink.close()
        store.close()


async def run(section: str) -> list[Figure]:
    figures = []
    for what, setup, options in CASES:
        with tempfile.TemporaryDirectory() as tmp:
            found = await measure(setup, dict(options), Path(tmp))
        sizes = found["sizes"]
        assert isinstance(sizes, list)
        per_message = ", ".join(f"{s / MIB:.2f}" for s in sizes)
        figures.append(
            Figure(
                section,
                what,
                f"{found['messages']} message(s) of {per_message} MiB; "
                f"{found['immich']} Immich + {found['discord']} Discord requests",
                "each message <= 10 MiB",
                all(s <= 10 * MIB for s in sizes),
            )
        )
    return figures
