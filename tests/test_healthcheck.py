"""``immich-sidecar healthcheck`` (the image's HEALTHCHECK): asks the real metrics server on the
address the config's ``metrics.listen`` names."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.config.model import MetricsSettings
from sidecar.ops.healthcheck import healthz_url
from sidecar.ops.http_server import MetricsServer
from sidecar.ops.metrics import Metrics
from tests.config_helpers import ENV, SECRETS, VALID, write_config
from tests.e2e_harness import free_port


@pytest.fixture(autouse=True)
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    srv = MetricsServer(Metrics(), lambda: [], "127.0.0.1", 0)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


def config_listening_on(tmp_path: Path, listen: str) -> Path:
    return write_config(tmp_path, VALID + f"metrics:\n  listen: {listen}\n")


async def healthcheck(config: Path) -> int:
    # In a thread: the server answers in this test's event loop.
    return await asyncio.to_thread(main, ["healthcheck", "-c", str(config)])


async def test_healthy_on_the_port_metrics_listen_names(
    server: MetricsServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert server.port != 9187
    config = config_listening_on(tmp_path, f"127.0.0.1:{server.port}")

    assert await healthcheck(config) == 0

    out, err = capsys.readouterr()
    assert out == f"healthy: http://127.0.0.1:{server.port}/healthz\n"
    assert not any(secret in out + err for secret in SECRETS)


async def test_a_wildcard_listen_address_is_asked_on_loopback(
    server: MetricsServer, tmp_path: Path
) -> None:
    config = config_listening_on(tmp_path, f"0.0.0.0:{server.port}")

    assert await healthcheck(config) == 0


async def test_unhealthy_when_nothing_answers_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    config = config_listening_on(tmp_path, f"127.0.0.1:{port}")

    assert await healthcheck(config) == 1

    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(f"unhealthy: http://127.0.0.1:{port}/healthz: no answer (")
    assert len(err.splitlines()) == 1


async def test_an_invalid_config_is_unhealthy_with_exit_1_not_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, "immich: {url: http://x}\nmetrics: {listen: nowhere}\n")

    assert await healthcheck(config) == 1  # Docker reserves exit code 2

    err = capsys.readouterr().err
    assert err.startswith(f"unhealthy: {config}:") and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:9187/healthz"),
        ("", "http://127.0.0.1:9187/healthz"),
        ("::", "http://[::1]:9187/healthz"),
        ("192.168.1.5", "http://192.168.1.5:9187/healthz"),
        ("fd00::5", "http://[fd00::5]:9187/healthz"),
        ("localhost", "http://localhost:9187/healthz"),
    ],
)
def test_healthz_url(host: str, url: str) -> None:
    assert healthz_url(MetricsSettings(host=host, port=9187)) == url
