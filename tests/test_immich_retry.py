"""Retries: which failures are retried, how often, how long, and what the metrics say.

stamina runs in test mode here (no real sleeping; attempts still capped by the client's own
max_attempts), so the waits the client chooses are checked through ``decide_retry`` and the
retry log line rather than by timing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import respx
import stamina

from sidecar.config.model import Secret
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import (
    ImmichAuthError,
    ImmichBadRequestError,
    ImmichPermissionError,
    ImmichRateLimitedError,
    ImmichServerError,
    ImmichUnavailableError,
)
from sidecar.immich.retry import (
    RetryableResponse,
    RetryPolicy,
    decide_retry,
    retry_after_seconds,
)
from sidecar.ops.metrics import Metrics
from tests.openapi import multipart_parts
from tests.test_immich_client import API, BASE, KEY, error_json, people_json, person_json

ENDPOINT = "GET /api/people"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def no_sleeping() -> Iterator[None]:
    with stamina.set_testing(True, attempts=100, cap=True):
        yield


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def mock() -> Iterator[respx.Router]:
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def make_client(metrics: Metrics, **kwargs: float) -> ImmichClient:
    return ImmichClient(BASE, Secret(KEY), metrics, **kwargs)  # type: ignore[arg-type]


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value("immich_sidecar_" + name, labels) or 0.0


def ok() -> httpx.Response:
    return httpx.Response(200, json=people_json([person_json()]))


# -- pure decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("0", 0.0),
        ("7", 7.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("nan", None),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
    ],
)
def test_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


def test_decide_retry() -> None:
    def answer(status: int, wait: float | None) -> RetryableResponse:
        return RetryableResponse(status, "busy", None, wait)

    assert decide_retry(answer(503, None), remaining_seconds=60) is True
    assert decide_retry(answer(429, 5.0), remaining_seconds=60) == 5.0
    # asked to wait longer than the call may take: give up now instead of sleeping to fail
    assert decide_retry(answer(429, 120.0), remaining_seconds=60) is False
    assert decide_retry(httpx.ConnectError("refused"), remaining_seconds=60) is True
    assert decide_retry(httpx.ReadTimeout("slow"), remaining_seconds=60) is True
    assert decide_retry(ValueError("bug"), remaining_seconds=60) is False
    assert decide_retry(ImmichAuthError("no"), remaining_seconds=60) is False


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


# -- retried -------------------------------------------------------------------------------


async def test_429_with_retry_after_is_retried_with_the_asked_wait(
    mock: respx.Router,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    route = mock.get("/people")
    route.side_effect = [
        httpx.Response(429, json=error_json(429, "slow down"), headers={"retry-after": "3"}),
        ok(),
    ]
    async with make_client(metrics) as client:
        people, _ = await client.people()
    assert [p.name for p in people] == ["Alice"]
    assert route.call_count == 2
    assert (
        "Immich GET /api/people on 127.0.0.1:2283 failed (HTTP 429 Too Many Requests); "
        "retry 1 of 4 after waiting 3.0s, as its Retry-After asked"
    ) in caplog.text
    assert KEY not in caplog.text  # neither our lines nor stamina's retry log
    assert sample(metrics, "immich_request_retries_total", endpoint=ENDPOINT) == 1
    assert sample(metrics, "immich_requests_total", endpoint=ENDPOINT, status="429") == 1
    assert sample(metrics, "immich_requests_total", endpoint=ENDPOINT, status="200") == 1
    assert sample(metrics, "immich_request_duration_seconds_count", endpoint=ENDPOINT) == 2


async def test_a_retry_after_beyond_the_budget_fails_at_once(
    mock: respx.Router, metrics: Metrics
) -> None:
    route = mock.get("/people").respond(
        429, json=error_json(429, "slow down"), headers={"retry-after": "3600"}
    )
    async with make_client(metrics, max_retry_seconds=60) as client:
        with pytest.raises(ImmichRateLimitedError, match="slow down"):
            await client.people()
    assert route.call_count == 1
    assert (
        sample(metrics, "immich_request_failures_total", endpoint=ENDPOINT, reason="rate_limited")
        == 1
    )


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="Service Unavailable"),
        httpx.Response(502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}),
        httpx.Response(504),
        httpx.ConnectError("Connection refused"),
        httpx.ConnectTimeout("timed out"),
        httpx.ReadTimeout("timed out"),
        httpx.RemoteProtocolError("Server disconnected"),
    ],
    ids=["503", "502", "504", "connect", "connect-timeout", "read-timeout", "disconnect"],
)
async def test_transient_failures_are_retried_then_succeed(
    mock: respx.Router,
    metrics: Metrics,
    failure: httpx.Response | Exception,
) -> None:
    route = mock.get("/people")
    route.side_effect = [failure, failure, ok()]
    async with make_client(metrics) as client:
        people, _ = await client.people()
    assert len(people) == 1
    assert route.call_count == 3
    assert sample(metrics, "immich_request_retries_total", endpoint=ENDPOINT) == 2
    assert (
        sample(metrics, "immich_request_failures_total", endpoint=ENDPOINT, reason="http_5xx") == 0
    )


@pytest.mark.parametrize(
    ("failure", "why"),
    [
        (httpx.Response(503, text="Service Unavailable"), "HTTP 503 Service Unavailable"),
        (
            httpx.Response(
                502, text="<html>Bad Gateway</html>", headers={"content-type": "text/html"}
            ),
            "HTTP 502 Bad Gateway",
        ),
        (httpx.ConnectError("[Errno 111] Connection refused"), "connection refused"),
        (
            httpx.ConnectError("[Errno -2] Name or service not known"),
            "cannot connect ([Errno -2] Name or service not known)",
        ),
        (httpx.ConnectTimeout("timed out"), "timed out connecting"),
        (httpx.ReadTimeout("timed out"), "timed out waiting for the answer"),
        (
            httpx.RemoteProtocolError("Server disconnected"),
            "connection broken (RemoteProtocolError)",
        ),
    ],
    ids=["503", "502", "refused", "dns", "connect-timeout", "read-timeout", "disconnect"],
)
async def test_each_retry_line_says_which_endpoint_and_host_why_and_the_wait(
    mock: respx.Router,
    metrics: Metrics,
    caplog: pytest.LogCaptureFixture,
    failure: httpx.Response | Exception,
    why: str,
) -> None:
    caplog.set_level(logging.DEBUG, logger="sidecar.immich.client")
    mock.get(f"/people/{KEY_ID_LIKE}/thumbnail").side_effect = [failure, failure, ok()]
    async with make_client(metrics, max_attempts=3) as client:
        await client.person_thumbnail(KEY_ID_LIKE)
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "sidecar.immich.client" and "; retry " in r.getMessage()
    ]
    assert {r.levelname for r in caplog.records if r.getMessage() in lines} == {"DEBUG"}
    prefix = f"Immich GET /api/people/{{id}}/thumbnail on 127.0.0.1:2283 failed ({why}); retry"
    assert [line.split(" after waiting ")[0] for line in lines] == [
        f"{prefix} 1 of 2",
        f"{prefix} 2 of 2",
    ], lines
    assert all(re.search(r" after waiting \d+\.\ds$", line) for line in lines), lines
    assert all(KEY_ID_LIKE not in line and KEY not in line for line in lines)


@pytest.mark.parametrize(
    ("failure", "error", "reason", "text"),
    [
        (
            httpx.Response(
                503, json=error_json(503, "maintenance"), headers={"x-correlation-id": "c9"}
            ),
            ImmichServerError,
            "http_5xx",
            "maintenance (correlation id c9)",
        ),
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            ImmichUnavailableError,
            "connect",
            "cannot connect ([Errno 111] Connection refused)",
        ),
        (
            httpx.ReadTimeout("timed out"),
            ImmichUnavailableError,
            "timeout",
            "timed out (3 attempts)",
        ),
        (httpx.ReadError("reset"), ImmichUnavailableError, "network", "connection broken"),
    ],
)
async def test_attempts_are_bounded_then_a_clear_error(
    mock: respx.Router,
    metrics: Metrics,
    failure: httpx.Response | Exception,
    error: type[Exception],
    reason: str,
    text: str,
) -> None:
    route = mock.get("/people")
    if isinstance(failure, Exception):
        route.side_effect = failure
    else:
        route.return_value = failure
    async with make_client(metrics, max_attempts=3) as client:
        with pytest.raises(error) as caught:
            await client.people()
    assert text in str(caught.value) and ENDPOINT in str(caught.value)
    assert route.call_count == 3
    assert sample(metrics, "immich_request_retries_total", endpoint=ENDPOINT) == 2
    assert sample(metrics, "immich_request_failures_total", endpoint=ENDPOINT, reason=reason) == 1


# -- not retried ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ImmichBadRequestError),
        (401, ImmichAuthError),
        (403, ImmichPermissionError),
        (500, ImmichServerError),
    ],
)
async def test_client_errors_and_500_are_not_retried(
    mock: respx.Router,
    metrics: Metrics,
    status: int,
    error: type[Exception],
) -> None:
    route = mock.get("/people").respond(status, json=error_json(status, "no"))
    async with make_client(metrics) as client:
        with pytest.raises(error):
            await client.people()
    assert route.call_count == 1
    assert sample(metrics, "immich_request_retries_total", endpoint=ENDPOINT) == 0
    reason = "http_5xx" if status >= 500 else "http_4xx"
    assert sample(metrics, "immich_request_failures_total", endpoint=ENDPOINT, reason=reason) == 1


async def test_an_upload_is_retried_with_its_whole_body(
    mock: respx.Router, metrics: Metrics
) -> None:
    mock.get("/server/version").respond(json={"major": 3, "minor": 0, "patch": 3})
    route = mock.post("/assets")
    route.side_effect = [
        httpx.Response(503),
        httpx.Response(201, json={"id": KEY_ID_LIKE, "status": "created"}),
    ]
    now = datetime(2025, 1, 1, tzinfo=UTC)
    async with make_client(metrics) as client:
        await client.upload_asset(
            "a.jpg", b"\xff\xd8" + b"x" * 5000, file_created_at=now, file_modified_at=now
        )
    first, second = (multipart_parts(c.request) for c in route.calls)
    assert first == second and len(second["assetData"]) == 5002


KEY_ID_LIKE = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
