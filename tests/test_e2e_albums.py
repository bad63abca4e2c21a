"""Album rules end to end: the real ``immich-sidecar run`` process against the fake Immich on
127.0.0.1 (2.x and 3.x API shapes), with a console target."""

from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

OLD = datetime(2018, 8, 2, 16, 30, tzinfo=UTC)
RULES = textwrap.dedent("""\
    - name: holiday
      albums: {any: [holiday 2026]}
      targets: [stdout]
    - name: alice-in-family
      albums: {any: [Family]}
      people: {any: [Alice]}
      targets: [stdout]
    """)


class World:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config" / "config.yaml"
        self.config.parent.mkdir()
        self.state = tmp / "data" / "state.db"
        self.port = free_port()
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.grandpa = immich.add_user("Grandpa")

    def write(self, rules: str = RULES) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            metrics_port=self.port,
        )

    def sidecar(self) -> SidecarProcess:
        return SidecarProcess(self.config, {"IMMICH_API_KEY": self.immich.api_key}, self.port)

    def old_photo(self, *people: str, owner: str | None = None) -> str:
        return self.immich.add_asset(created_at=OLD, taken_at=OLD, people=people, owner=owner)

    def line_of(self, text: str) -> int:
        lines = self.config.read_text().splitlines()
        return next(n for n, line in enumerate(lines, 1) if text in line)


@pytest.fixture(params=[(2, 7, 5), (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def world(request, tmp_path):
    async with FakeImmich(version=request.param) as immich:
        yield World(immich, tmp_path)


async def test_album_additions_are_announced_once_across_restarts(world):
    immich = world.immich
    holiday = immich.add_album(
        "Holiday 2026",
        [world.old_photo(world.alice)],
        owner=world.grandpa,
        shared_with=[immich.key_user_id],
    )
    family = immich.add_album("Family", [world.old_photo()])
    work = immich.add_album("Work")
    world.write()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await sidecar.wait_for_polls(2)
        assert sidecar.notifications() == []  # albums with assets: the baseline

        old = world.old_photo(world.bob)
        theirs = world.old_photo(world.alice, owner=world.grandpa)  # another user's asset
        elsewhere = world.old_photo(world.alice)
        alice, bob = world.old_photo(world.alice), world.old_photo(world.bob)
        immich.add_to_album(holiday, [old, theirs])
        immich.add_to_album(work, [elsewhere])
        immich.add_to_album(family, [alice, bob])
        for asset in (old, theirs, alice):
            await sidecar.wait_for_delivery(asset)
        await sidecar.wait_for_polls(2)
        [line] = sidecar.delivered(old)
        assert line["rule"] == "holiday" and line["album"] == "Holiday 2026"
        assert line["link"] == f"https://photos.example.test/albums/{holiday}/photos/{old}"
        assert line["album_link"] == f"https://photos.example.test/albums/{holiday}"
        assert [n["people"] for n in sidecar.delivered(theirs)] == [["Alice"]]
        assert [n["rule"] for n in sidecar.delivered(alice)] == ["alice-in-family"]
        assert sidecar.delivered(bob) == [] and sidecar.delivered(elsewhere) == []
        assert len(sidecar.notifications()) == 3
        assert await sidecar.metric("immich_sidecar_albums_watched") == 2
        assert await sidecar.metric("immich_sidecar_album_changes_total") >= 2
    finally:
        assert await sidecar.stop() == 0

    while_stopped = world.old_photo()
    immich.add_to_album(holiday, [while_stopped])
    again = world.sidecar()
    await again.start()
    try:
        await again.wait_for_delivery(while_stopped)
        await again.wait_for_polls(2)
        assert [n["asset_id"] for n in again.notifications()] == [while_stopped]  # no re-post
    finally:
        assert await again.stop() == 0


async def test_an_unknown_album_name_stops_the_start_and_waits_for_immich_at_reload(world):
    holiday = world.immich.add_album("Holiday 2026")
    world.write(RULES.replace("holiday 2026", "Holiday 2025"))
    refused = world.sidecar()
    await refused.start(wait_started=False)
    assert await refused.exited() == 2
    line = world.line_of("Holiday 2025")
    assert (
        f"{world.config}:{line}: rules[0].albums.any[0]: no album called 'Holiday 2025' in "
        "Immich (albums: 'Holiday 2026'); an album of that name may exist but not be visible to "
        "this key's user (owned by someone else and not shared with them)"
    ) in refused.stderr
    assert "Traceback" not in "\n".join(refused.stderr)

    world.immich.add_album("Family")
    world.write()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await sidecar.wait_for_polls(1)
        mark = len(sidecar.stderr)
        world.write(RULES.replace("holiday 2026", "Holiday 2025"))
        # Making the album in Immich would make the file right: the reload waits for it.
        await sidecar.wait_for_log("waiting for the album Holiday 2025 in Immich", after=mark)
        assert any(
            re.search(
                r"config\.yaml:\d+: rules\[0\]\.albums\.any\[0\]: no album called "
                r"'Holiday 2025'",
                entry,
            )
            for entry in sidecar.stderr[mark:]
        )
        added = world.old_photo()
        world.immich.add_to_album(holiday, [added])
        await sidecar.wait_for_delivery(added)  # the running config still watches the album
    finally:
        assert await sidecar.stop() == 0
