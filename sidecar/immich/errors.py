"""Errors of the Immich client: one class per status family, each a clear one-line message.

Messages carry Immich's own JSON ``message`` and the correlation id (so a user can find the
request in the server log), the templated endpoint (never a real URL, never a query string),
and never the API key.
"""

from __future__ import annotations

MESSAGE_LIMIT = 200  # characters of anything quoted from a response


def shorten(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line, at most ``limit`` characters: control characters become spaces."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class ImmichError(Exception):
    """A call to Immich failed.

    ``endpoint`` is the low-cardinality template (``GET /api/assets/{id}/thumbnail``),
    ``status`` the HTTP status (None without a response), ``message`` Immich's own message
    or our description, ``correlation_id`` the ``X-Correlation-ID`` of the response.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        status: int | None = None,
        correlation_id: str | None = None,
    ) -> None:
        self.message = shorten(message)
        self.endpoint = endpoint
        self.status = status
        self.correlation_id = shorten(correlation_id, 80) if correlation_id else None
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f"Immich {self.endpoint}" if self.endpoint else "Immich"
        status = f" HTTP {self.status}" if self.status is not None else ""
        text = f"{where}:{status} {self.message}" if self.message else f"{where}:{status}"
        if self.correlation_id:
            text += f" (correlation id {self.correlation_id})"
        return text


class ImmichClientError(ImmichError):
    """Immich rejected the request (4xx): retrying the same request cannot help."""


class ImmichBadRequestError(ImmichClientError):
    """400: a malformed request or an unknown id."""


class ImmichAuthError(ImmichClientError):
    """401: the API key is missing, wrong or revoked."""


class ImmichPermissionError(ImmichClientError):
    """403: the API key lacks a permission this call needs."""


class ImmichNotFoundError(ImmichClientError):
    """404: no such thing (or not visible to this key)."""


class ImmichRateLimitedError(ImmichClientError):
    """429 that persisted through every retry."""


class ImmichServerError(ImmichError):
    """5xx: Immich (or a proxy in front of it) failed."""


class ImmichUnavailableError(ImmichError):
    """No answer at all: connection refused, DNS failure or timeout, after retries."""


class ImmichResponseError(ImmichError):
    """An answer that is not what the API promises (HTML login page, truncated JSON, ...)."""


class ImmichTooLargeError(ImmichResponseError):
    """An answer larger than the caller's limit (read no further). ``size``: its bytes when
    Immich said them (``Content-Length``), else None (more than the limit)."""

    def __init__(
        self,
        message: str,
        *,
        size: int | None,
        limit: int,
        endpoint: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message, endpoint=endpoint, status=status)
        self.size = size
        self.limit = limit


def error_for_status(
    status: int, message: str, *, endpoint: str, correlation_id: str | None
) -> ImmichError:
    """The error class for an HTTP error status."""
    cls: type[ImmichError]
    if status == 400:
        cls = ImmichBadRequestError
    elif status == 401:
        cls = ImmichAuthError
    elif status == 403:
        cls = ImmichPermissionError
    elif status == 404:
        cls = ImmichNotFoundError
    elif status == 429:
        cls = ImmichRateLimitedError
    elif 400 <= status < 500:
        cls = ImmichClientError
    elif status >= 500:
        cls = ImmichServerError
    else:
        cls = ImmichResponseError
    return cls(message, endpoint=endpoint, status=status, correlation_id=correlation_id)
