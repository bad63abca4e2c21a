"""The one I/O edge to Immich: build a request, send it with retries, cap what is read, count
it in the metrics and turn every failure into an ImmichError. Endpoint methods (what to ask,
how to read the answer) live in ``sidecar.immich.client``.

Authenticates with the ``x-api-key`` header only (a key in a URL leaks into proxy and access
logs). Every request is counted under a templated endpoint label (``GET
/api/people/{id}/thumbnail``, never a real id).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import httpx
import stamina

from sidecar import __version__
from sidecar.config.model import Secret
from sidecar.immich.errors import (
    ImmichError,
    ImmichResponseError,
    ImmichTooLargeError,
    ImmichUnavailableError,
    error_for_status,
    shorten,
)
from sidecar.immich.retry import (
    RETRYABLE_STATUSES,
    Attempts,
    RetryableResponse,
    RetryPolicy,
    retry_after_seconds,
)
from sidecar.masking import mask_secrets
from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics

log = logging.getLogger("sidecar.immich.client")  # the name users and tests filter on

T = TypeVar("T")

USER_AGENT = f"immich-discord-sidecar/{__version__}"
MAX_ERROR_BODY = 64 * 1024  # bytes of an error body read for its message
MAX_BODY = 256 * 1024 * 1024  # bytes of a successful body (an original video can be large)


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class ShapeError(Exception):
    """A response body that does not have the promised shape."""


def isoformat(moment: datetime) -> str:
    """UTC with milliseconds and a ``Z``, the form both spec versions accept; naive is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def _describe_shape_error(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}" if exc.args else "missing field"
    if isinstance(exc, ShapeError):
        return shorten(str(exc), 120)
    return shorten(f"{type(exc).__name__}: {exc}", 120)


def require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"{what} is not a list")
    return value


def require_dict(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} is not an object")
    return value


def require_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{what} is not an integer")
    return value


def _error_message(answer: Answer) -> str:
    """Immich's JSON ``message`` (2.x: a list for validation errors; 3.x: "Validation failed"
    and the problems in ``errors``), else a short hint."""
    if "json" in answer.content_type:
        try:
            data = json.loads(answer.body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            message = data.get("message")
            if isinstance(message, list):
                return "; ".join(str(m) for m in message)
            problems = data.get("errors")
            if isinstance(problems, list) and problems:
                listed = "; ".join(_describe_problem(p) for p in problems)
                return f"{message or 'invalid request'}: {listed}"
            if message:
                return str(message)
            if data.get("error"):
                return str(data["error"])
    if "html" in answer.content_type:
        return "an HTML page instead of an API answer"
    return ""


def _describe_problem(problem: Any) -> str:
    """One validation issue of Immich 3.x (``{path: [...], message}``) as ``path: message``."""
    if not isinstance(problem, dict):
        return str(problem)
    path = problem.get("path")
    where = ".".join(str(p) for p in path) if isinstance(path, list) else ""
    text = str(problem.get("message") or problem.get("code") or "invalid")
    return f"{where}: {text}" if where else text


class Transport:
    """One httpx.AsyncClient to one Immich, and the only method that sends to it."""

    def __init__(
        self,
        base_url: str,
        api_key: Secret,
        metrics: Metrics,
        *,
        timeout: float = 30.0,
        max_attempts: int = 5,
        max_retry_seconds: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        wait_initial: float = 0.5,
        wait_max: float = 10.0,
    ) -> None:
        root = base_url.strip().rstrip("/")
        if root.endswith("/api"):  # a common paste; the client adds /api itself
            root = root[: -len("/api")]
        parts = urlsplit(root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the Immich URL must look like http://host:port")
        if parts.query or parts.fragment:
            raise ValueError("the Immich URL must not have a query or fragment")
        self._api_key = api_key
        self._metrics = metrics
        self._policy = RetryPolicy(
            max_attempts=max_attempts,
            max_seconds=max_retry_seconds,
            wait_initial=wait_initial,
            wait_max=wait_max,
            wait_jitter=wait_initial,
        )
        self._http = httpx.AsyncClient(
            base_url=root + "/api",
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the I/O edge ---------------------------------------------------------------------

    async def call_json(
        self,
        method: str,
        template: str,
        parse: Callable[[Any], T],
        **kwargs: Any,
    ) -> T:
        answer = await self.request(method, template, **kwargs)
        endpoint = f"{method} /api{template}"
        try:
            if "json" not in answer.content_type:
                kind = answer.content_type or "no content type"
                raise ShapeError(
                    f"expected JSON but got {shorten(kind, 60)}"
                    " (is a login page or proxy in front of Immich?)"
                )
            try:
                data = json.loads(answer.body)
            except ValueError:
                raise ShapeError("invalid JSON (truncated?)") from None
            return parse(data)
        except (ShapeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            self._metrics.immich_request_failures.labels(endpoint, "bad_response").inc()
            # Not logged here: the caller says once what failed (a poll, a command).
            raise ImmichResponseError(
                f"unexpected response: {_describe_shape_error(exc)}",
                endpoint=endpoint,
                status=answer.status,
            ) from None

    async def request(
        self,
        method: str,
        template: str,
        *,
        path: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json_body: object = None,
        form: Mapping[str, str] | None = None,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        accept: str = "application/json",
        allow: Iterable[int] = (),
        authenticated: bool = True,
        retry: bool = True,
        max_body: int = MAX_BODY,
    ) -> Answer:
        """Send one logical request with retries; the only place that talks to Immich. An
        answer over ``max_body`` bytes is not read further: ImmichTooLargeError."""
        endpoint = f"{method} /api{template}"
        url = template.format_map({k: quote(v, safe="") for k, v in (path or {}).items()})
        headers = {"Accept": accept}
        if authenticated:
            headers["x-api-key"] = self._api_key.reveal()
        allowed = frozenset(allow)
        policy = self._policy
        attempts = policy.max_attempts if retry else 1
        history = Attempts(deadline=time.monotonic() + policy.max_seconds)
        try:
            async for attempt in stamina.retry_context(
                on=history.on_error,
                attempts=attempts,
                timeout=policy.max_seconds,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    if attempt.num > 1:
                        self._count_retry(endpoint, attempt.num - 1, attempts - 1, history)
                    request = self._http.build_request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        data=form,
                        files=files,
                        headers=headers,
                    )
                    return await self._send_once(request, endpoint, allowed, max_body)
        except ImmichTooLargeError:
            raise  # Immich answered; the caller asked for less (a video too large to attach)
        except (RetryableResponse, httpx.TransportError, ImmichError) as exc:
            final, reason = self._final_error(exc, endpoint, attempts)
        self._metrics.immich_request_failures.labels(endpoint, reason).inc()
        log.debug("%s", final, extra=log_fields(endpoint=endpoint, reason=reason))
        raise final from None

    def _count_retry(self, endpoint: str, retry: int, retries: int, history: Attempts) -> None:
        """Count and log the retry about to be sent, with why the attempt before it failed."""
        self._metrics.immich_request_retries.labels(endpoint).inc()
        why = self._redact(history.reason)
        # The templated endpoint and the host only: a real URL may carry ids. DEBUG: an outage
        # is said once by the caller, not once per request.
        log.debug(
            "Immich %s on %s failed (%s); retry %d of %d after waiting %s",
            endpoint,
            self._http.base_url.netloc.decode("ascii"),
            why,
            retry,
            retries,
            history.waited(),
            extra=log_fields(endpoint=endpoint, reason=why),
        )

    def _final_error(
        self,
        exc: RetryableResponse | httpx.TransportError | ImmichError,
        endpoint: str,
        attempts: int,
    ) -> tuple[ImmichError, str]:
        """The ImmichError a request that failed for good raises, and the reason label its
        failure is counted under."""
        if isinstance(exc, RetryableResponse):
            final: ImmichError = error_for_status(
                exc.status, exc.message, endpoint=endpoint, correlation_id=exc.correlation_id
            )
            return final, "rate_limited" if exc.status == 429 else "http_5xx"
        if isinstance(exc, httpx.TimeoutException):
            plural = "s" if attempts > 1 else ""
            return ImmichUnavailableError(
                f"timed out ({attempts} attempt{plural})", endpoint=endpoint
            ), "timeout"
        if isinstance(exc, httpx.ConnectError):
            return ImmichUnavailableError(
                f"cannot connect ({self._redact(str(exc)) or 'connection failed'})",
                endpoint=endpoint,
            ), "connect"
        if isinstance(exc, httpx.TransportError):
            return ImmichUnavailableError(
                f"connection broken ({type(exc).__name__})", endpoint=endpoint
            ), "network"
        if isinstance(exc, ImmichResponseError):
            return exc, "bad_response"
        if exc.status is not None and exc.status >= 500:
            return exc, "http_5xx"
        return exc, "http_4xx"

    async def _send_once(
        self, request: httpx.Request, endpoint: str, allowed: frozenset[int], max_body: int
    ) -> Answer:
        started = time.perf_counter()
        size: int | None = None
        try:
            response = await self._http.send(request, stream=True)
            try:
                status = response.status_code
                ok = 200 <= status < 300 or status in allowed
                size = _declared_size(response)
                body = (
                    None  # said too large: not a byte more is read
                    if ok and size is not None and size > max_body
                    else await _read_capped(
                        response, max_body if ok else MAX_ERROR_BODY, truncate=not ok
                    )
                )
            finally:
                await response.aclose()
        finally:
            self._metrics.immich_request_duration.labels(endpoint).observe(
                time.perf_counter() - started
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        self._metrics.immich_requests.labels(endpoint, str(status)).inc()
        log.debug("Immich %s -> %d in %.0f ms", endpoint, status, elapsed_ms)
        if body is None:
            raise ImmichTooLargeError(
                f"response larger than {max_body / (1024 * 1024):g} MiB",
                size=size,
                limit=max_body,
                endpoint=endpoint,
                status=status,
            )
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        answer = Answer(status=status, content_type=content_type, body=body)
        if ok:
            return answer
        correlation_id = response.headers.get("x-correlation-id")
        message = self._redact(_error_message(answer))
        if status in RETRYABLE_STATUSES:
            wait = retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))
            raise RetryableResponse(status, message, correlation_id, wait)
        if 300 <= status < 400:
            raise ImmichResponseError(
                "unexpected redirect (is a login proxy in front of Immich?)",
                endpoint=endpoint,
                status=status,
                correlation_id=correlation_id,
            )
        raise error_for_status(
            status,
            message or response.reason_phrase,
            endpoint=endpoint,
            correlation_id=correlation_id,
        )

    def _redact(self, text: str) -> str:
        return mask_secrets(text, [self._api_key.reveal()])


def _declared_size(response: httpx.Response) -> int | None:
    """The body's length as the answer declares it (Content-Length), if it does."""
    value = response.headers.get("content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def _read_capped(response: httpx.Response, limit: int, *, truncate: bool) -> bytes | None:
    """The body, at most ``limit`` bytes: cut there when ``truncate``, else None if larger."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            return None
    return b"".join(chunks)
