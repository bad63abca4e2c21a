"""When to retry an Immich request, and how long to wait: pure decisions, no I/O.

Retried: connection failures, timeouts and broken connections, and the statuses that say
"try again later" (429, 502, 503, 504), honouring ``Retry-After``. Never retried: other 4xx
(the same request fails the same way) and 500 (in Immich an unhandled error for this very
request, not an overload signal). The sleeping itself is stamina's job; this module only
decides (``Attempts`` also remembers, per request, what the next retry's log line says).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus

import httpx
import stamina

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

# Errors before or while reading a response; a request that never got an answer may be
# repeated (upload deduplicates by checksum, adding to an album is idempotent).
RETRYABLE_TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # including the first
    max_seconds: float = 60.0  # total budget for all attempts and waits of one call
    wait_initial: float = 0.5  # first exponential backoff, doubled per attempt
    wait_max: float = 10.0
    wait_jitter: float = 1.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_seconds <= 0:
            raise ValueError("max_retry_seconds must be positive")


class RetryableResponse(Exception):
    """An answer that asks us to come back later; carries what the final error needs."""

    def __init__(
        self, status: int, message: str, correlation_id: str | None, retry_after: float | None
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.message = message
        self.correlation_id = correlation_id
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait according to a ``Retry-After`` header: delta-seconds or an HTTP-date.

    None when the header is absent or unreadable (then normal backoff applies); never negative.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def decide_retry(exc: Exception, remaining_seconds: float) -> bool | float:
    """stamina backoff hook: False to give up, True for exponential backoff, or the seconds
    to wait that the server asked for.

    A ``Retry-After`` longer than what is left of the call's time budget gives up at once:
    sleeping only to fail later would hold the caller for nothing.
    """
    if isinstance(exc, RetryableResponse):
        if exc.retry_after is None:
            return True
        if exc.retry_after > remaining_seconds:
            return False
        return float(exc.retry_after)
    return isinstance(exc, RETRYABLE_TRANSPORT_ERRORS)


def retry_reason(exc: BaseException) -> str:
    """Why an attempt failed, in a few words for the retry log line: "HTTP 503 Service
    Unavailable", "connection refused", "timed out waiting for the answer". The caller masks
    the API key in it (a connect error's text is the operating system's, never a URL)."""
    if isinstance(exc, RetryableResponse):
        try:
            phrase = HTTPStatus(exc.status).phrase
        except ValueError:
            phrase = ""
        return f"HTTP {exc.status} {phrase}".rstrip()
    if isinstance(exc, httpx.ConnectTimeout):
        return "timed out connecting"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out waiting for the answer"
    if isinstance(exc, httpx.ConnectError):
        detail = " ".join(str(exc).split())[:120]
        if "refused" in detail.lower():
            return "connection refused"
        return f"cannot connect ({detail or type(exc).__name__})"
    return f"connection broken ({type(exc).__name__})"


def quiet_library_retry_hooks() -> None:
    """The Immich client counts and logs its own retries; stamina's default hooks would log a
    warning per retry and count them again in the global Prometheus registry."""
    stamina.instrumentation.set_on_retry_hooks([])


class Attempts:
    """What the retry loop of one request remembers between attempts: why the last one failed,
    when, and the wait its answer asked for (Retry-After)."""

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline
        self._asked_wait: float | None = None
        self.reason = ""
        self._failed_at = 0.0

    def on_error(self, exc: Exception) -> bool | float:
        """stamina's ``on``: whether to retry ``exc``, or after how many seconds."""
        decision = decide_retry(exc, self._deadline - time.monotonic())
        self._asked_wait = None if isinstance(decision, bool) else decision
        self.reason, self._failed_at = retry_reason(exc), time.monotonic()
        return decision

    def waited(self) -> str:
        """How long the retry about to be sent waited, for the log line."""
        if self._asked_wait is not None:
            return f"{self._asked_wait:.1f}s, as its Retry-After asked"
        return f"{time.monotonic() - self._failed_at:.1f}s"
