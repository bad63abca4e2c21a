"""The /metrics, /healthz and /readyz endpoint, served for real on 127.0.0.1 and read with httpx."""

from __future__ import annotations

import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sidecar.ops.http_server import MetricsServer
from sidecar.ops.metrics import DEFINITIONS, PREFIX, Metrics

DESIGN = Path(__file__).resolve().parents[1].parent / "shared" / "DESIGN.md"

# The names alert rules and the dashboard depend on (DESIGN.md "Metrics" plus the ones the chart's
# alerts use). Counters are exposed with a _total suffix.
INTERFACE_NAMES = [
    "immich_requests_total",
    "immich_request_retries_total",
    "immich_request_failures_total",
    "immich_request_duration_seconds",
    "poll_runs_total",
    "last_successful_poll_timestamp_seconds",
    "poll_duration_seconds",
    "notifications_sent_total",
    "notification_failures_total",
    "discord_retries_total",
    "outbox_pending",
    "outbox_dead",
    "config_last_reload_successful",
    "config_last_reload_success_timestamp_seconds",
    "config_reloads_total",
    "discord_connected",
    "build_info",
]


class Readiness:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def __call__(self) -> list[str]:
        return list(self.reasons)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def readiness() -> Readiness:
    return Readiness()


@pytest.fixture
async def server(metrics: Metrics, readiness: Readiness) -> AsyncIterator[MetricsServer]:
    srv = MetricsServer(metrics, readiness, "127.0.0.1", 0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def client(server: MetricsServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as c:
        yield c


def exposed_names(text: str) -> set[str]:
    """Every metric name announced by a # TYPE line (present even before a label set exists)."""
    return set(re.findall(r"^# TYPE (\S+) ", text, flags=re.MULTILINE))


async def test_port_zero_binds_a_real_port(server: MetricsServer) -> None:
    assert server.port > 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=2):
        pass


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"


async def test_readyz_is_ready_when_there_are_no_reasons(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_readyz_lists_every_reason_one_per_line(
    client: httpx.AsyncClient, readiness: Readiness
) -> None:
    readiness.reasons = ["config not loaded", "last poll 900s ago (interval 120s)"]
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.text.splitlines() == readiness.reasons

    readiness.reasons = []
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_turns_a_crashing_check_into_not_ready(metrics: Metrics) -> None:
    def broken() -> list[str]:
        raise ValueError("secret-token-in-message")

    srv = MetricsServer(metrics, broken, "127.0.0.1", 0)
    await srv.start()
    try:
        async with httpx.AsyncClient() as c:
            response = await c.get(f"http://127.0.0.1:{srv.port}/readyz")
    finally:
        await srv.stop()
    assert response.status_code == 503
    assert "readiness check failed" in response.text
    assert "secret-token" not in response.text


async def test_metrics_exposes_every_interface_name(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    metrics.track_discord_connection()  # as a sidecar with a bot does
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = exposed_names(response.text)
    missing = [PREFIX + n for n in INTERFACE_NAMES if PREFIX + n not in names]
    assert missing == []


def test_each_line_of_the_metrics_table_is_one_typed_attribute() -> None:
    """A line in Metrics' table is all a new metric needs: an attribute of that name holding a
    collector of that kind, registered in the instance's own registry (but discord_connected)."""
    metrics, other = Metrics(), Metrics()
    assert len({d.name for d in DEFINITIONS}) == len(DEFINITIONS)
    registered = set(metrics.registry._names_to_collectors.values())
    for definition in DEFINITIONS:
        collector = getattr(metrics, definition.attr)
        assert isinstance(collector, definition.kind)
        assert collector is not getattr(other, definition.attr)
        assert (collector in registered) == definition.registered, definition.attr


async def test_discord_connected_is_absent_without_a_bot_and_0_until_it_connects(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    assert PREFIX + "discord_connected" not in exposed_names((await client.get("/metrics")).text)
    metrics.track_discord_connection()
    metrics.track_discord_connection()  # a second bot (a test, a restart) is no error
    text = (await client.get("/metrics")).text
    assert f"{PREFIX}discord_connected 0.0" in text.splitlines()


def test_design_md_names_are_in_the_interface_list() -> None:
    if not DESIGN.is_file():
        pytest.skip(f"{DESIGN} is absent (../shared beside the checkout)")
    section = DESIGN.read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
    design_names = set(re.findall(r"`([a-z_]+)(?:\{[^}]*\})?`", section))
    design_names.discard("immich_sidecar_")
    assert design_names, "no metric names found in DESIGN.md"
    assert design_names <= set(INTERFACE_NAMES)


async def test_metrics_reflect_updates_with_labels(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    metrics.immich_requests.labels(endpoint="search_metadata", status="200").inc(3)
    metrics.outbox_pending.set(7)
    metrics.build_info.labels(version="0.1.0").set(1)

    text = (await client.get("/metrics")).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    key = (PREFIX + "immich_requests_total", (("endpoint", "search_metadata"), ("status", "200")))
    assert samples[key] == 3
    assert samples[(PREFIX + "outbox_pending", ())] == 7
    assert samples[(PREFIX + "build_info", (("version", "0.1.0"),))] == 1


async def test_metrics_speaks_openmetrics_when_asked(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    metrics.poll_runs.labels(result="success").inc()
    response = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")
    # OpenMetrics announces a counter by its family name, without the _total suffix.
    assert f"# TYPE {PREFIX}poll_runs counter" in response.text
    assert f'{PREFIX}poll_runs_total{{result="success"}} 1.0' in response.text


async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/nope")).status_code == 404


async def test_stop_releases_the_port(metrics: Metrics) -> None:
    srv = MetricsServer(metrics, list, "127.0.0.1", 0)
    await srv.start()
    port = srv.port
    await srv.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


async def test_a_busy_port_fails_with_a_one_line_message(
    server: MetricsServer, metrics: Metrics
) -> None:
    second = MetricsServer(metrics, list, "127.0.0.1", server.port)
    with pytest.raises(OSError, match=r"^cannot listen for metrics on 127\.0\.0\.1:\d+: ") as info:
        await second.start()
    assert "\n" not in str(info.value)
    with pytest.raises(RuntimeError):
        _ = second.port


async def test_metrics_carry_the_process_platform_and_gc_collectors(
    client: httpx.AsyncClient,
) -> None:
    text = (await client.get("/metrics")).text
    names = exposed_names(text)
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "python_info",
        "python_gc_objects_collected_total",
    ):
        assert name in names, name


async def test_metrics_are_gzipped_when_the_scraper_asks(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("content-encoding") == "gzip"
    assert f"{PREFIX}poll_runs_total" in response.text  # httpx decoded it
