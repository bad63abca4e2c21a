"""Hot reload, the Immich connection and readiness, in-process against the fake Immich.

The poll interval is an hour, so the only scheduled poll runs at start; each test drives the
next polls itself (``poll``), which makes every step a counted event, never a timed one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from sidecar.app import Sidecar
from sidecar.engine.poll import POLL_JOB_ID
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich, Faults

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout]
    """)
ALL_FAIL = Faults(rate=1.0, kinds=("500",))  # every API call answers 500 (never retried)


class Env:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.path = tmp / "config.yaml"
        self.state = tmp / "state.db"
        self.port = free_port()
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")

    def write(self, rules: str = RULES) -> Path:
        write_config(
            self.path,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            interval="1h",
            metrics_port=self.port,
        )
        return self.path

    def rules_of(self, sidecar: Sidecar) -> tuple[str, ...]:
        return sidecar.settings.rules[0].people.any


@pytest.fixture
async def env(monkeypatch, tmp_path, request):
    version = getattr(request, "param", (2, 7, 5))
    async with FakeImmich(version=version) as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        yield Env(immich, tmp_path)


@pytest.fixture
async def sidecar(env, caplog):
    caplog.set_level(logging.DEBUG, logger="sidecar")
    app = Sidecar(env.write(), stdout=io.StringIO())
    await app.start()
    yield app
    await app.stop()


async def poll(sidecar: Sidecar) -> None:
    """One poll, as the scheduler runs it."""
    await sidecar.poll_job.run()


def sample(sidecar: Sidecar, name: str, **labels: str) -> float:
    return sidecar.metrics.registry.get_sample_value(name, labels) or 0.0


def logged(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


async def readyz(sidecar: Sidecar) -> httpx.Response:
    assert sidecar._http is not None
    async with httpx.AsyncClient() as http:
        return await http.get(f"http://127.0.0.1:{sidecar._http.port}/readyz")


async def test_an_edit_right_after_start_applies(env, sidecar):
    # Written before the watcher task ever ran: no change event will report it.
    env.write(RULES.replace("Alice", "Bob"))
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Bob",)
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="success") == 1


async def test_a_reload_postponed_by_immich_is_retried_before_the_next_poll(env, sidecar, caplog):
    env.immich.faults = Faults(rate=1.0, kinds=("500",), paths="/api/search/person")
    env.write(RULES.replace("Alice", "Bob"))
    assert not await sidecar.reload()
    assert logged(caplog, "config reload postponed")
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 0
    await poll(sidecar)  # Immich still fails: still pending, and said once only
    assert env.rules_of(sidecar) == ("Alice",)
    assert len(logged(caplog, "config reload postponed")) == 1

    env.immich.faults = None
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Bob",)
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 1
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="success") == 1
    assert logged(caplog, "config reloaded")


async def test_a_pending_config_is_replaced_by_a_newer_edit(env, sidecar):
    env.immich.faults = Faults(rate=1.0, kinds=("500",), paths="/api/search/person")
    env.write(RULES.replace("Alice", "Bob"))
    assert not await sidecar.reload()
    env.write(RULES.replace("[Alice]", "[Alice, Bob]"))
    assert not await sidecar.reload()
    env.immich.faults = None
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Alice", "Bob")
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="success") == 1


@pytest.mark.parametrize("env", [(3, 2, 0)], indirect=True)
async def test_a_reload_while_immich_is_down_does_not_count_as_connected(env, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="sidecar")
    env.immich.faults = ALL_FAIL
    by_id = RULES.replace("Alice", env.alice)
    sidecar = Sidecar(env.write(by_id), stdout=io.StringIO())
    await sidecar.start()
    try:
        env.write(by_id.replace(env.alice, env.bob))  # ids: nothing to look up in Immich
        assert await sidecar.reload()
        env.immich.faults = None
        env.immich.reset_requests()
        await poll(sidecar)
        assert logged(caplog, "connected to Immich 3.2.0")
        searches = env.immich.api_requests("POST", "/api/search/metadata")
        assert searches and all("filter" in (r.json or {}) for r in searches)  # the 3.2 form
        assert sidecar.status().immich_version == "3.2.0"
    finally:
        await sidecar.stop()


async def test_readyz_is_503_while_immich_fails_and_while_the_file_is_rejected(env, sidecar):
    await poll(sidecar)
    assert (await readyz(sidecar)).status_code == 200

    env.immich.faults = ALL_FAIL
    await poll(sidecar)
    answer = await readyz(sidecar)
    assert answer.status_code == 503
    assert "Immich" in answer.text and "HTTP 500" in answer.text
    assert not sidecar.status().immich_reachable
    env.immich.faults = None
    await poll(sidecar)
    assert (await readyz(sidecar)).status_code == 200

    good = env.path.read_bytes()
    env.write(RULES.replace("[stdout]", "[stdot]"))
    assert not await sidecar.reload()
    answer = await readyz(sidecar)
    assert answer.status_code == 503
    assert "config file" in answer.text and "rejected" in answer.text
    env.path.write_bytes(good)
    await sidecar.reload()
    assert (await readyz(sidecar)).status_code == 200


async def test_undoing_a_rejected_edit_marks_the_running_config_good_again(env, sidecar, caplog):
    good = env.path.read_bytes()
    env.write(RULES.replace("[stdout]", "[stdot]"))
    assert not await sidecar.reload()
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 0
    assert not await sidecar.reload()  # the same rejected bytes: said once
    assert len(logged(caplog, "config reload rejected")) == 1

    env.path.write_bytes(good)
    assert not await sidecar.reload()  # nothing new to apply...
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 1  # ...but good
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="unchanged") == 1
    assert logged(caplog, "matches the running config again")
    assert not await sidecar.reload()
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="unchanged") == 1


async def test_stopping_during_a_retrying_poll_logs_no_traceback(env, caplog):
    caplog.set_level(logging.INFO)
    sidecar = Sidecar(env.write(), stdout=io.StringIO())
    await sidecar.start()
    try:
        # 503 is retried with backoff: the poll stays in flight for seconds
        env.immich.faults = Faults(rate=1.0, kinds=("503",))
        env.immich.reset_requests()
        assert sidecar._scheduler is not None
        sidecar._scheduler.modify_job(POLL_JOB_ID, next_run_time=datetime.now(UTC))
        for _ in range(500):  # bounded: until the poll has met its first 503
            if env.immich.api_requests():
                break
            await asyncio.sleep(0.01)
        assert env.immich.api_requests()
    finally:
        await sidecar.stop()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert not any(r.exc_info for r in caplog.records)


async def test_a_wrong_api_key_is_logged_once_not_at_every_poll(env, monkeypatch, caplog):
    monkeypatch.setenv("IMMICH_API_KEY", "not-the-key")
    sidecar = Sidecar(env.write(), stdout=io.StringIO())
    await sidecar.start()
    try:
        await poll(sidecar)
        await poll(sidecar)
    finally:
        await sidecar.stop()
    assert len(logged(caplog, "Immich is not usable")) == 1
    assert "Invalid API key" in logged(caplog, "Immich is not usable")[0]


async def test_an_unknown_person_in_a_reload_is_reported_with_its_line(env, sidecar, caplog):
    env.write(RULES.replace("[Alice]", "[Alicia]"))
    line = next(
        number
        for number, text in enumerate(env.path.read_text().splitlines(), 1)
        if "Alicia" in text
    )
    assert not await sidecar.reload()
    [problem] = logged(caplog, "no person called 'Alicia'")
    assert f"{env.path}:{line}: rules[0].people.any[0]: no person called 'Alicia'" in problem


async def test_stopping_while_a_reload_waits_for_immich_does_not_wait_for_it(env, caplog):
    sidecar = Sidecar(env.write(), stdout=io.StringIO())
    await sidecar.start()
    try:
        # 503 is retried up to 5 times with backoff; the watcher's reload waits on it
        env.immich.faults = Faults(rate=1.0, kinds=("503",), paths="/api/search/person")
        env.write(RULES.replace("Alice", "Bob"))
        for _ in range(500):  # bounded: until the reload has met its first 503
            if env.immich.api_requests(path="/api/search/person"):
                break
            await asyncio.sleep(0.01)
        assert env.immich.api_requests(path="/api/search/person")
    finally:
        await sidecar.stop()
    assert len(env.immich.api_requests(path="/api/search/person")) < 5  # it did not wait
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


# -- a reload that waits for Immich (issue 24, item 5) ---------------------------------------


async def test_a_reload_naming_someone_immich_lacks_waits_and_applies_once_they_are_named(
    env, sidecar, caplog
):
    carol = env.immich.add_person("")  # a face Immich found, nobody named yet
    env.write(RULES.replace("[Alice]", "[Alice, Carol]"))
    bytes_written = env.path.read_bytes()
    assert not await sidecar.reload()
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 0
    answer = await readyz(sidecar)
    assert answer.status_code == 503 and "waits for Carol in Immich" in answer.text
    await poll(sidecar)
    await poll(sidecar)  # still nobody called Carol: tried again, said once
    assert env.rules_of(sidecar) == ("Alice",)
    said = logged(caplog, "waiting for Carol in Immich; fix it in Immich or in the file")
    assert len(said) == 1
    assert len(logged(caplog, "no person called 'Carol'")) == 1
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="failure") == 1

    env.immich.name_person(carol, "Carol")  # as Immich's web app names a person
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Alice", "Carol")
    assert env.path.read_bytes() == bytes_written  # nothing but Immich changed
    assert sample(sidecar, "immich_sidecar_config_last_reload_successful") == 1
    assert sample(sidecar, "immich_sidecar_config_reloads_total", result="success") == 1
    assert (await readyz(sidecar)).status_code == 200
    assert logged(caplog, "Carol in Immich now: the config change applies")


async def test_a_waiting_reload_costs_one_look_up_per_name_a_poll(env, sidecar):
    env.immich.reset_requests()
    env.write(RULES.replace("[Alice]", "[Alice, Carol]"))
    assert not await sidecar.reload()
    # The watcher checks the edit too (one change event): let it, so it is not counted below.
    for _ in range(250):  # bounded
        if len(env.immich.api_requests("GET", "/api/search/person")) >= 4:
            break
        await asyncio.sleep(0.02)
    assert len(env.immich.api_requests("GET", "/api/search/person")) == 4
    env.immich.reset_requests()
    await poll(sidecar)
    searched = sorted(r.query["name"] for r in env.immich.api_requests("GET", "/api/search/person"))
    assert searched == ["Alice", "Carol"]


async def test_a_waiting_reload_waits_for_an_album_too(env, sidecar, caplog):
    album_rule = RULES + "- name: trip\n  albums: {any: [Summer]}\n  targets: [stdout]\n"
    env.write(album_rule)
    assert not await sidecar.reload()
    assert logged(caplog, "waiting for the album Summer in Immich")
    env.immich.add_album("Summer")
    await poll(sidecar)
    assert [r.name for r in sidecar.settings.rules] == ["kids", "trip"]


async def test_a_name_two_albums_share_is_rejected_not_retried(env, sidecar, caplog):
    env.immich.add_album("Trip")
    env.immich.add_album("trip")
    env.write(RULES + "- name: trip\n  albums: {any: [Trip, Summer]}\n  targets: [stdout]\n")
    assert not await sidecar.reload()
    assert logged(caplog, "config reload rejected")
    # Only the file can say which Trip: making Summer in Immich would not make it right.
    assert not logged(caplog, "waiting for")
    env.immich.add_album("Summer")
    env.immich.reset_requests()
    await poll(sidecar)
    assert [r.name for r in sidecar.settings.rules] == ["kids"]
    assert not env.immich.api_requests("GET", "/api/albums")
    assert "rejected" in (await readyz(sidecar)).text


async def test_an_edit_while_waiting_replaces_what_is_waited_for(env, sidecar, caplog):
    env.write(RULES.replace("[Alice]", "[Alice, Carol]"))
    assert not await sidecar.reload()
    env.write(RULES.replace("[Alice]", "[Alice, Dave]"))
    await poll(sidecar)
    assert logged(caplog, "waiting for Dave in Immich")
    env.immich.add_person("Carol")
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Alice",)  # Carol is no longer what the file needs
    env.immich.add_person("Dave")
    await poll(sidecar)
    assert env.rules_of(sidecar) == ("Alice", "Dave")
