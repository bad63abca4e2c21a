"""The real ``immich-sidecar run`` process against the fake Immich on 127.0.0.1, with a console
target: what a household would see, including restarts and config edits."""

from __future__ import annotations

import sqlite3
import textwrap
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.engine.store.database import Store
from tests.e2e_harness import ConfigMapVolume, SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich, Faults

pytestmark = pytest.mark.e2e

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice, Bob]}
      targets: [stdout]
    - name: videos-without-carol
      people: {none: [Carol]}
      asset_types: [VIDEO]
      targets: [stdout]
    """)


class World:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.tmp = tmp
        self.config = tmp / "config" / "config.yaml"
        self.config.parent.mkdir()
        self.state = tmp / "data" / "state.db"
        self.port = free_port()
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.carol = immich.add_person("Carol")

    def write(self, rules: str = RULES, **kw) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            metrics_port=self.port,
            **kw,
        )

    def sidecar(self, config: Path | None = None, **kw) -> SidecarProcess:
        return SidecarProcess(
            config or self.config, {"IMMICH_API_KEY": self.immich.api_key}, self.port, **kw
        )

    def upload(self, *people: str, **kw) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), people=people, **kw)


@pytest.fixture(params=[(2, 7, 5), (3, 2, 0)], ids=["immich-2.7", "immich-3.2"])
async def world(request, tmp_path):
    async with FakeImmich(version=request.param) as immich:
        world = World(immich, tmp_path)
        world.write()
        yield world


@pytest.fixture
async def sidecar(world):
    process = world.sidecar()
    await process.start()
    yield process
    await process.stop()


async def test_matching_asset_is_delivered_once_and_others_are_not(world, sidecar):
    match = world.upload(world.alice)
    other = world.upload(world.carol)
    excluded = world.upload(world.carol, type="VIDEO")
    video = world.upload(type="VIDEO")
    await sidecar.wait_for_delivery(match)
    await sidecar.wait_for_delivery(video)
    await sidecar.wait_for_polls(3)
    [line] = sidecar.delivered(match)
    assert line["rule"] == "kids" and line["people"] == ["Alice"]
    assert line["link"] == f"https://photos.example.test/photos/{match}"
    assert [n["rule"] for n in sidecar.delivered(video)] == ["videos-without-carol"]
    assert sidecar.delivered(other) == [] and sidecar.delivered(excluded) == []


async def test_person_recognised_after_the_first_polls_is_delivered(world, sidecar):
    asset = world.upload()
    await sidecar.wait_for_polls(3)
    assert sidecar.delivered(asset) == []
    world.immich.recognise(asset, world.bob)
    await sidecar.wait_for_delivery(asset)
    await sidecar.wait_for_polls(2)
    assert len(sidecar.delivered(asset)) == 1


async def test_sigterm_stops_cleanly(world):
    process = world.sidecar()
    await process.start()
    await process.wait_for_polls(1)
    assert await process.stop() == 0
    assert any("sidecar stopped" in line for line in process.stderr)


async def test_sigkill_between_enqueue_and_send_neither_loses_nor_duplicates(world):
    # A webhook target that is down keeps the deliveries queued (enqueued, not sent).
    world.write(
        rules=RULES.replace("targets: [stdout]", "targets: [stdout, hook]", 1),
        targets="stdout: {console: true}\n"
        "hook: {webhook_url: 'http://127.0.0.1:9/api/webhooks/1/x'}",
    )
    first = world.sidecar()
    await first.start()
    assets = [world.upload(world.alice) for _ in range(3)]
    for asset in assets:
        await first.wait_for_delivery(asset)
    # The console's lines are written before their rows are marked sent: a kill in between is
    # at-least-once by nature (the line is out, the state file does not know). This test is
    # about the kill between enqueue and send, so it waits for the marks first.
    await first.wait_until(lambda: _console_sent(world.state) == set(assets), "stdout marked sent")
    await first.kill()
    store = Store.open(world.state)
    pending = {r.asset_id for r in store.rows() if r.state == "pending"}
    store.close()
    assert pending == set(assets)  # queued for the hook, never sent: the port is closed
    later = world.upload(world.bob)

    second = world.sidecar()
    await second.start()
    await second.wait_for_delivery(later)
    await second.wait_for_polls(2)
    await second.stop()
    delivered = first.notifications() + second.notifications()
    for asset in [*assets, later]:
        assert [n["asset_id"] for n in delivered].count(asset) == 1
    store = Store.open(world.state)
    rows = store.rows()
    store.close()
    assert {r.asset_id for r in rows if r.target == "hook"} == {*assets, later}


async def test_config_edits_reload_without_restart(world, sidecar):
    # An invalid edit keeps the running rules...
    text = world.config.read_text()
    world.config.write_text(text.replace("targets: [stdout]", "targets: [stdot]"))
    await sidecar.wait_for_log("config reload rejected")
    # write_text is no atomic edit: a reload may first see the file cut short, then this.
    await sidecar.wait_until(
        lambda: any(
            "is not a defined target" in line and "stdot" in line for line in sidecar.stderr
        ),
        "the rejection naming stdot",
    )
    assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 0
    kept = world.upload(world.alice)
    await sidecar.wait_for_delivery(kept)

    # ...and a valid one takes effect without a restart.
    mark = len(sidecar.stderr)
    world.write(rules=RULES.replace("any: [Alice, Bob]", "any: [Carol]"))
    took = await sidecar.wait_for_log("config reloaded", after=mark)
    print(f"config reload took effect {took:.2f}s after the write")
    assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 1
    carol = world.upload(world.carol)
    alice = world.upload(world.alice)
    await sidecar.wait_for_delivery(carol)
    await sidecar.wait_for_polls(2)
    assert sidecar.delivered(alice) == []


async def test_first_start_does_not_announce_the_existing_library(world):
    old = world.immich.add_asset(
        created_at=datetime.now(UTC) - timedelta(hours=3), people=[world.alice]
    )
    process = world.sidecar()
    await process.start()
    new = world.upload(world.alice)
    await process.wait_for_delivery(new)
    await process.stop()
    assert process.delivered(old) == []


async def test_invalid_config_at_start_exits_2_with_the_problem(world):
    world.config.write_text(world.config.read_text().replace("interval: 1s", "interval: soon"))
    process = world.sidecar()
    await process.start(wait_started=False)
    assert await process.exited() == 2
    assert any("config.yaml:" in line and "poll.interval" in line for line in process.stderr)
    assert not any("Traceback" in line for line in process.stderr)


CAROL_ONLY = RULES.replace("any: [Alice, Bob]", "any: [Carol]")


async def only_carol_is_delivered(world: World, sidecar: SidecarProcess) -> None:
    carol = world.upload(world.carol)
    alice = world.upload(world.alice)
    await sidecar.wait_for_delivery(carol)
    await sidecar.wait_for_polls(2)
    assert sidecar.delivered(alice) == []


async def test_an_edit_while_the_sidecar_starts_is_not_lost(world):
    # Immich holds back its answer to the first version request: the edit lands after the
    # config was read and before the file watcher is armed.
    world.immich.faults = Faults(
        rate=1.0, kinds=("timeout",), paths="/api/server/version", timeout_delay=1.0
    )
    process = world.sidecar()
    await process.start(wait_started=False)
    try:
        await process.wait_until(lambda: bool(world.immich.api_requests()), "the version request")
        world.write(rules=CAROL_ONLY)
        world.immich.faults = None
        await process.wait_for_log("started")
        await only_carol_is_delivered(world, process)
    finally:
        await process.stop()


async def test_a_configmap_update_made_as_kubelet_makes_it_is_reloaded(world):
    volume = ConfigMapVolume(world.tmp / "configmap")
    volume.write(world.config.read_text())
    original = world.config.read_text()
    process = world.sidecar(volume.path)
    await process.start()
    try:
        mark = len(process.stderr)
        world.write(rules=CAROL_ONLY)  # the staging copy
        volume.write(world.config.read_text())
        took = await process.wait_for_log("config reloaded", after=mark)
        print(f"ConfigMap update took effect {took:.2f}s after the swap")
        await only_carol_is_delivered(world, process)
        mark = len(process.stderr)
        volume.write(original)  # a second swap: the first update's folder is gone by now
        await process.wait_for_log("config reloaded", after=mark)
        alice = world.upload(world.alice)
        await process.wait_for_delivery(alice)
    finally:
        await process.stop()
    assert len(volume.timestamped_folders()) == 1
    assert not any("rejected" in line or "Traceback" in line for line in process.stderr)


async def test_an_edit_during_an_immich_outage_applies_when_immich_is_back(world, sidecar):
    await sidecar.wait_for_polls(1)
    assert (await sidecar.readyz()).status_code == 200
    failures = await sidecar.metric("immich_sidecar_poll_runs_total", 'result="failure"')
    world.immich.faults = Faults(rate=1.0, kinds=("500",))
    mark = len(sidecar.stderr)
    world.write(rules=CAROL_ONLY)
    await sidecar.wait_for_log("config reload postponed", after=mark)
    await sidecar.wait_for_metric(
        "immich_sidecar_poll_runs_total", 'result="failure"', failures + 2
    )
    ready = await sidecar.readyz()
    assert ready.status_code == 503, ready.text
    assert "HTTP 500" in ready.text and "waits for Immich" in ready.text
    assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 0

    world.immich.faults = None
    await sidecar.wait_for_log("config reloaded", after=mark)
    assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 1
    await only_carol_is_delivered(world, sidecar)
    assert (await sidecar.readyz()).status_code == 200
    assert sum("config reload postponed" in line for line in sidecar.stderr) == 1


async def test_a_debug_log_written_into_the_config_folder_does_not_feed_itself(world):
    process = world.sidecar(
        options=("--log-level", "DEBUG"), log_file=world.config.parent / "sidecar.log"
    )
    await process.start()
    try:
        await process.wait_for_polls(3)
    finally:
        await process.stop()
    assert any("DEBUG" in line for line in process.stderr)
    assert [line for line in process.stderr if "watchfiles" in line] == []
    assert not any("config reload" in line for line in process.stderr)


async def test_sigterm_during_a_poll_that_retries_stops_without_a_traceback(world):
    sidecar = world.sidecar(options=("--log-level", "DEBUG"))  # the retry lines are DEBUG
    await sidecar.start()
    await sidecar.wait_for_polls(1)
    world.immich.faults = Faults(rate=1.0, kinds=("503",))  # retried with backoff
    await sidecar.wait_for_log("retry 1 of 4")
    assert await sidecar.stop() == 0
    assert not any("Traceback" in line or "raised an exception" in line for line in sidecar.stderr)
    assert any("sidecar stopped" in line for line in sidecar.stderr)


def _console_sent(state: Path) -> set[str]:
    """The assets whose console rows the state file has marked sent (read only, beside run)."""
    with closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT asset_id FROM outbox WHERE target = 'stdout' AND state = 'sent'")
        return {asset_id for (asset_id,) in rows}
