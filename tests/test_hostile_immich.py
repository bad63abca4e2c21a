"""Hostile Immich answers (truncated JSON, wrong types, missing fields, a 10 MB error body, a
reverse proxy's login page) through the real client, the poller and the sidecar process: one
short line, counted by reason, the poll fails cleanly and the next one recovers."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.config.model import PeopleFilter, Rule, Secret
from sidecar.engine.rules.matching import compile_rules
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller, Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError, ImmichResponseError, ImmichServerError
from sidecar.immich.models import Person
from sidecar.ops.metrics import Metrics
from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import HOSTILE_KINDS, FakeImmich, Hostile

SEARCH = "/api/search/metadata"
SEARCH_ENDPOINT = "POST /api/search/metadata"
SHAPE_KINDS = ("truncated_json", "wrong_types", "missing_fields", "html_login_page")
MAX_LINE = 500


def failures(metrics: Metrics, endpoint: str, reason: str) -> float:
    value = metrics.registry.get_sample_value(
        "immich_sidecar_immich_request_failures_total", {"endpoint": endpoint, "reason": reason}
    )
    return value or 0.0


def poll_runs(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value("immich_sidecar_poll_runs_total", {"result": result})
    return value or 0.0


def assert_one_short_line(error: BaseException) -> None:
    text = str(error)
    assert "\n" not in text
    assert len(text) < MAX_LINE, text
    assert "xxxxxxxxxx" not in text  # no dump of the 10 MB body
    assert "<form" not in text and "password" not in text  # no dump of the login page


def expected_reason(kind: str) -> str:
    return "http_5xx" if kind == "huge_error_body" else "bad_response"


@pytest.fixture
async def immich():
    async with FakeImmich() as fake:
        yield fake


def fast_client(immich: FakeImmich, metrics: Metrics) -> ImmichClient:
    return ImmichClient(
        immich.url, Secret(immich.api_key), metrics, max_attempts=2, wait_initial=0, wait_max=0
    )


# ------------------------------------------------------------------------- the client


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
async def test_hostile_search_answer_is_one_short_counted_line(immich, kind):
    alice = immich.add_person("Alice")
    immich.add_asset(created_at=datetime.now(UTC), people=[alice])
    immich.hostile = Hostile(kind, paths=(SEARCH,))
    metrics = Metrics()
    async with fast_client(immich, metrics) as client:
        with pytest.raises(ImmichError) as caught:
            await client.search_metadata(created_after=datetime.now(UTC) - timedelta(hours=1))
    assert_one_short_line(caught.value)
    if kind == "huge_error_body":
        assert isinstance(caught.value, ImmichServerError)
    else:
        assert isinstance(caught.value, ImmichResponseError)
    if kind == "html_login_page":
        assert "login page or proxy" in str(caught.value)
    assert failures(metrics, SEARCH_ENDPOINT, expected_reason(kind)) == 1
    assert immich.api_key not in str(caught.value)


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
@pytest.mark.parametrize(
    ("call", "endpoint"),
    [
        (lambda c: c.version(), "GET /api/server/version"),
        (lambda c: c.missing_permissions(["asset.read"]), "GET /api/api-keys/me"),
        (lambda c: c.search_person("Ali"), "GET /api/search/person"),
        (lambda c: c.people(), "GET /api/people"),
    ],
    ids=["version", "api-key", "search-person", "people"],
)
async def test_every_json_endpoint_turns_hostile_answers_into_immich_errors(
    immich, kind, call, endpoint
):
    immich.add_person("Alice")
    immich.hostile = Hostile(kind)
    metrics = Metrics()
    async with fast_client(immich, metrics) as client:
        with pytest.raises(ImmichError) as caught:
            await call(client)
    assert_one_short_line(caught.value)
    assert failures(metrics, endpoint, expected_reason(kind)) == 1


# ------------------------------------------------------------------------- the poller


class Rig:
    def __init__(self, immich: FakeImmich, store: Store) -> None:
        self.immich, self.store = immich, store
        self.metrics = Metrics()
        self.client = fast_client(immich, self.metrics)
        self.poller = Poller(self.client, store, self.metrics)
        self.alice = immich.add_person("Alice")
        rules = [
            Rule("kids", ("family",), PeopleFilter(any=("Alice",))),
            Rule("videos", ("family",), asset_types=frozenset({"VIDEO"})),
        ]
        compiled = compile_rules(rules, lambda n: [Person(self.alice, n)] if n == "Alice" else [])
        self.watch = Watch(
            compiled, lambda _n: ("family",), timedelta(hours=48), timedelta(seconds=0)
        )


@pytest.fixture
async def rig(immich, tmp_path):
    store = Store.open(tmp_path / "state.db")
    rig = Rig(immich, store)
    await rig.client.version()  # as the sidecar does at start
    rig.poller.start_baseline(["kids", "videos"], timedelta(hours=1))
    yield rig
    await rig.client.aclose()
    store.close()


@pytest.mark.parametrize("kind", HOSTILE_KINDS)
async def test_poll_fails_cleanly_and_the_next_poll_recovers(rig, kind):
    asset = rig.immich.add_asset(
        created_at=datetime.now(UTC) - timedelta(minutes=5), people=[rig.alice]
    )
    rig.immich.hostile = Hostile(kind, paths=(SEARCH,))

    with pytest.raises(ImmichError) as caught:
        await rig.poller.poll(rig.watch)

    assert_one_short_line(caught.value)
    assert poll_runs(rig.metrics, "failure") == 1
    assert poll_runs(rig.metrics, "success") == 0
    assert failures(rig.metrics, SEARCH_ENDPOINT, expected_reason(kind)) == 1
    assert rig.store.rows() == []

    rig.immich.hostile = None
    result = await rig.poller.poll(rig.watch)

    assert poll_runs(rig.metrics, "success") == 1
    assert result.queued == 1
    assert {(r.rule, r.asset_id) for r in rig.store.rows()} == {("kids", asset)}


async def test_many_hostile_polls_in_a_row_queue_nothing_and_leave_no_debris(rig):
    asset = rig.immich.add_asset(
        created_at=datetime.now(UTC) - timedelta(minutes=5), people=[rig.alice]
    )
    for kind in SHAPE_KINDS * 2:
        rig.immich.hostile = Hostile(kind, paths=(SEARCH,))
        with pytest.raises(ImmichError):
            await rig.poller.poll(rig.watch)
    assert poll_runs(rig.metrics, "failure") == len(SHAPE_KINDS) * 2
    rig.immich.hostile = None
    await rig.poller.poll(rig.watch)
    assert [r.asset_id for r in rig.store.rows()] == [asset]


# ------------------------------------------------------------------------- the process

RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout]
    """)


@pytest.mark.e2e
@pytest.mark.parametrize("kind", ["html_login_page", "truncated_json"])
async def test_process_survives_and_logs_each_hostile_answer_once_as_a_warning(
    tmp_path: Path, kind
):
    async with FakeImmich() as immich:
        alice = immich.add_person("Alice")
        config = tmp_path / "config.yaml"
        port = free_port()
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            rules=RULES,
            metrics_port=port,
            settle="0s",
            # Each spoiled search is then a poll's: after a poll, the new-upload check (one
            # search of one asset, fast polls' trigger) that fails is only said at DEBUG and
            # tried again after the next poll, so it counts no failed poll.
            fast_polls=False,
        )
        process = SidecarProcess(config, {"IMMICH_API_KEY": immich.api_key}, port)
        await process.start()
        try:
            await process.wait_for_polls(1)
            spoiled = 2
            immich.hostile = Hostile(kind, paths=(SEARCH,), times=spoiled)
            await process.wait_until(lambda: immich.hostile_answers == spoiled, "hostile answers")
            await process.wait_for_polls(1)  # recovered
            asset = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
            await process.wait_for_delivery(asset)
            failed = await process.metric("immich_sidecar_poll_runs_total", 'result="failure"')
        finally:
            assert await process.stop() == 0
    assert failed == spoiled
    assert not any("Traceback" in line for line in process.stderr), process.stderr
    mentions = [line for line in process.stderr if "search/metadata" in line]
    assert all(" WARNING " in line for line in mentions), mentions
    assert all(len(line) < MAX_LINE + 80 for line in mentions)  # + time, level, logger
    assert not any("<form" in line for line in process.stderr)
    assert not any(immich.api_key in line for line in process.stderr + process.stdout)
    assert len(mentions) == spoiled, mentions
