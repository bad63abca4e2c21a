"""The real ``immich-sidecar run`` process against the fake Immich, with an external library:
a scan inserts a batch at one moment and without exif rows, and metadata extraction reads the
files minutes later (or after a paused queue is resumed). With the default ``settle: 2m`` every
asset is posted exactly once.

Time: the scan is placed in the past (``created_at``) so that the extraction "5 minutes after
the scan" falls a few seconds after the sidecar started, and a paused queue is resumed by a
control call; nothing waits minutes.
"""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RULES = textwrap.dedent("""\
    - name: everything
      targets: [stdout]
    """)
DELIVERY_LIMIT = 90.0  # seconds for 1,100 to 2,500 console lines on a loaded CI machine


class Library:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config.yaml"
        self.state = tmp / "state.db"
        self.port = free_port()
        write_config(
            self.config,
            immich_url=immich.url,
            state=self.state,
            rules=RULES,
            settle="2m",  # the default
            backfill="1h",  # the scan happened before the first start
            metrics_port=self.port,
        )

    def sidecar(self) -> SidecarProcess:
        return SidecarProcess(self.config, {"IMMICH_API_KEY": self.immich.api_key}, self.port)


@pytest.fixture(params=[(2, 7, 5), (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def library(request, tmp_path):
    async with FakeImmich(version=request.param) as immich:
        yield Library(immich, tmp_path)


def delivered(*processes: SidecarProcess) -> Counter[str]:
    return Counter(n["asset_id"] for p in processes for n in p.notifications() if "asset_id" in n)


async def wait_for_all(process: SidecarProcess, earlier: SidecarProcess | None, n: int) -> None:
    before = [earlier] if earlier else []
    await process.wait_until(
        lambda: sum(delivered(*before, process).values()) >= n,
        f"{n} deliveries",
        limit=DELIVERY_LIMIT,
    )


async def test_a_scan_read_five_minutes_later_is_posted_once(library):
    now = datetime.now(UTC)
    library.immich.pause_extraction()  # the queue reaches the batch 5 minutes after the scan
    scan = library.immich.library_scan(
        1_100,
        created_at=now - timedelta(minutes=4, seconds=55),
        taken_at=now - timedelta(days=1),
        exif_taken_at=now - timedelta(days=200),
    )
    process = library.sidecar()
    await process.start()
    try:
        await process.wait_for_log("without metadata yet")  # the window passed the batch
        await process.wait_for_polls(2)
        assert delivered(process) == Counter()
        library.immich.resume_extraction()
        await wait_for_all(process, None, 1_100)
        await process.wait_for_polls(3)
    finally:
        await process.stop()
    assert delivered(process) == Counter({asset: 1 for asset in scan})


async def test_extraction_paused_across_a_restart_posts_everything_once(library):
    library.immich.pause_extraction()
    scan = library.immich.library_scan(1_100, created_at=datetime.now(UTC) - timedelta(minutes=3))
    first = library.sidecar()
    await first.start()
    try:
        await first.wait_for_polls(3)
    finally:
        await first.stop()
    assert delivered(first) == Counter()

    second = library.sidecar()
    await second.start()
    try:
        await second.wait_for_polls(2)
        assert delivered(second) == Counter()
        library.immich.resume_extraction()
        await wait_for_all(second, first, 1_100)
        await second.wait_for_polls(3)
    finally:
        await second.stop()
    assert delivered(first, second) == Counter({asset: 1 for asset in scan})


async def test_2500_tied_assets_on_2x_are_posted_once_without_offset_paging(tmp_path):
    """2.x returns assets taken at the same moment in a new order on every request (the fake
    does each time): offset pages over them repeat some and skip others."""
    async with FakeImmich(version=(2, 7, 5)) as immich:
        library = Library(immich, tmp_path)
        now = datetime.now(UTC)
        immich.pause_extraction()
        scan = immich.library_scan(
            2_500,
            created_at=now - timedelta(minutes=5),
            taken_at=now - timedelta(days=1),
            exif_taken_at=now - timedelta(days=300),
        )
        process = library.sidecar()
        await process.start()
        try:
            await process.wait_for_log("without metadata yet")
            immich.resume_extraction()
            await wait_for_all(process, None, 2_500)
            await process.wait_for_polls(3)
        finally:
            await process.stop()
        searches = immich.api_requests("POST", "/api/search/metadata")
    assert delivered(process) == Counter({asset: 1 for asset in scan})
    assert [r.json for r in searches if r.json and r.json.get("page", 1) != 1] == []
    assert not any("twice and others never" in line for line in process.stderr)
