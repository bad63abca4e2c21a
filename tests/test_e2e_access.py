"""A key that lacks a permission, and a state file of another Immich user, end to end: the real
``immich-sidecar run`` process against the fake Immich on 127.0.0.1 (which answers 403 like
Immich for a call whose permission the key lacks, and whose permissions can change while the
sidecar runs, as a key edited in Immich's settings does)."""

from __future__ import annotations

import json
import sqlite3
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

OLD = datetime(2018, 8, 2, 16, 30, tzinfo=UTC)
RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout]
    - name: holiday
      albums: {any: [Holiday]}
      targets: [stdout]
    """)
ALL_BUT_PERSON_READ = (
    "asset.read",
    "asset.view",
    "asset.statistics",
    "album.read",
    "albumAsset.create",
    "memory.read",
    "user.read",
)
PEOPLE_OFF = (
    "finding people by name is off: the Immich API key lacks person.read; add it to the key "
    "(Immich: Account settings > API keys)"
)


class World:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.tmp = tmp
        self.config = tmp / "config.yaml"
        self.state = tmp / "data" / "state.db"
        self.port = free_port()

    def write(self, rules: str = RULES) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            metrics_port=self.port,
        )

    def sidecar(self, *run_options: str) -> SidecarProcess:
        return SidecarProcess(
            self.config,
            {"IMMICH_API_KEY": self.immich.api_key},
            self.port,
            run_options=run_options,
        )


@pytest.fixture(params=[(2, 7, 5), (3, 1, 0)], ids=["immich-2.7", "immich-3.1"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with FakeImmich(version=request.param, permissions=ALL_BUT_PERSON_READ) as immich:
        yield World(immich, tmp_path)


@pytest.fixture
async def one_world(tmp_path: Path) -> AsyncIterator[World]:
    """The state file's owner does not depend on the API version: one shape is enough."""
    async with FakeImmich(version=(3, 1, 0), permissions=ALL_BUT_PERSON_READ) as immich:
        yield World(immich, tmp_path)


def said(process: SidecarProcess, text: str) -> int:
    return sum(text in line for line in process.stderr)


async def test_a_missing_permission_is_said_once_and_comes_back_without_a_restart(
    world: World,
) -> None:
    immich = world.immich
    alice = immich.add_person("Alice")
    holiday = immich.add_album("Holiday", [immich.add_asset(created_at=OLD, taken_at=OLD)])
    world.write()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await sidecar.wait_for_polls(10)
        added = immich.add_asset(created_at=OLD, taken_at=OLD)
        immich.add_to_album(holiday, [added])
        await sidecar.wait_for_delivery(added)  # the album rule runs without person.read
        early = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        await sidecar.wait_for_polls(2)
        assert sidecar.delivered(early) == []  # the person rule is off

        assert said(sidecar, " is off") == 1, sidecar.stderr
        assert said(sidecar, PEOPLE_OFF) == 1
        assert said(sidecar, "not usable") == 0 and said(sidecar, "poll failed") == 0
        assert await sidecar.metric("immich_sidecar_feature_enabled", 'feature="people"') == 0
        assert await sidecar.metric("immich_sidecar_feature_enabled", 'feature="album_watching"')
        ready = await sidecar.readyz()
        assert ready.status_code == 503 and PEOPLE_OFF in ready.text
        searched = [r for r in immich.requests if r.path == "/api/search/person"]
        assert searched == []  # no call that can only answer 403, poll after poll

        immich.permissions.append("person.read")  # ticked in Immich's key settings
        await sidecar.wait_for_log("finding people by name is on")
        await sidecar.wait_for_delivery(early)  # within the look-back: not lost
        late = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        await sidecar.wait_for_delivery(late)
        await sidecar.wait_for_polls(1)
        assert await sidecar.metric("immich_sidecar_feature_enabled", 'feature="people"') == 1
        assert (await sidecar.readyz()).status_code == 200
        assert said(sidecar, " is off") == 1
        keys_read = sum(r.path == "/api/api-keys/me" for r in immich.requests)
        await sidecar.wait_for_polls(3)
        # Everything on: the key's permissions are not read again at every poll.
        assert sum(r.path == "/api/api-keys/me" for r in immich.requests) == keys_read
    finally:
        assert await sidecar.stop() == 0


async def test_a_permission_taken_away_while_running_is_said_once(world: World) -> None:
    immich = world.immich
    immich.permissions.append("person.read")
    alice = immich.add_person("Alice")
    immich.add_album("Holiday")
    world.write()
    sidecar = world.sidecar()
    await sidecar.start()
    try:
        await sidecar.wait_for_polls(2)
        immich.permissions.remove("album.read")  # the 403 comes from the album listing
        await sidecar.wait_for_log("album rules are off")
        await sidecar.wait_for_polls(5)
        assert said(sidecar, "album rules are off") == 1, sidecar.stderr
        assert said(sidecar, "poll failed") == 0
        photo = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        await sidecar.wait_for_delivery(photo)  # the person rule still runs
    finally:
        assert await sidecar.stop() == 0


async def test_a_state_file_of_another_immich_user_is_refused(one_world: World) -> None:
    world = one_world
    world.immich.permissions.append("person.read")
    world.immich.add_person("Alice")
    world.immich.add_album("Holiday")
    world.write()
    first = world.sidecar()
    await first.start()
    await first.wait_for_polls(1)
    assert await first.stop() == 0

    async with FakeImmich(version=world.immich.version) as other:  # another server, another user
        other.add_person("Alice")
        other.add_album("Holiday")
        world.immich = other
        world.write()
        refused = world.sidecar()
        await refused.start(wait_started=False)
        assert await refused.exited() == 2
        [line] = [entry for entry in refused.stderr if "--reset-state" in entry]
        assert line == (
            f"immich-sidecar: state file {world.state} belongs to Immich user 'Admin' "
            f"({first_user(world)}) at {first_url(world)}, but the API key is user 'Admin' "
            f"({other.key_user_id}) at {other.url}: run `immich-sidecar run --reset-state` to "
            "move the old file aside and start a new one (or set state.path to a file of this "
            "user's own)"
        )

        reset = world.sidecar("--reset-state")
        await reset.start()
        try:
            await reset.wait_for_polls(1)
            aside = [p for p in world.state.parent.iterdir() if ".reset-" in p.name]
            assert len(aside) == 1 and not aside[0].name.endswith(("-wal", "-shm"))
            assert owner_in(aside[0]) == first_user(world)  # moved, not deleted
            assert owner_in(world.state) == other.key_user_id
        finally:
            assert await reset.stop() == 0


async def test_the_same_user_at_a_new_address_and_an_old_state_file_are_adopted(
    one_world: World,
) -> None:
    world = one_world
    immich = world.immich
    immich.permissions.append("person.read")
    immich.add_person("Alice")
    immich.add_album("Holiday")
    world.write()
    first = world.sidecar()
    await first.start()
    await first.wait_for_polls(1)
    assert await first.stop() == 0
    with sqlite3.connect(world.state) as db:  # as a state file from before the record
        db.execute("DELETE FROM meta WHERE key = 'immich_owner'")
    db.close()

    await immich.stop()
    await immich.start()  # the same server (same users) at a new port: behind a proxy, say
    world.write()
    again = world.sidecar()
    await again.start()
    try:
        await again.wait_for_polls(1)
        assert owner_in(world.state) == immich.key_user_id
        assert said(again, "--reset-state") == 0
    finally:
        assert await again.stop() == 0


# -- helpers -------------------------------------------------------------------------------------


def owner_in(path: Path) -> str:
    with sqlite3.connect(path) as db:
        (value,) = db.execute("SELECT value FROM meta WHERE key = 'immich_owner'").fetchone()
    db.close()
    return str(json.loads(value)["user_id"])


def first_user(world: World) -> str:
    return _first(world)["user_id"]


def first_url(world: World) -> str:
    return _first(world)["url"]


def _first(world: World) -> dict[str, str]:
    aside = sorted(p for p in world.state.parent.iterdir() if ".reset-" in p.name)
    path = aside[0] if aside else world.state
    with sqlite3.connect(path) as db:
        (value,) = db.execute("SELECT value FROM meta WHERE key = 'immich_owner'").fetchone()
    db.close()
    return dict(json.loads(value))
