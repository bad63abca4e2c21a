"""The ``http`` target: one JSON POST per batch to any URL (n8n, Home Assistant, Node-RED,
IFTTT, a script of your own).

The body is versioned and described by ``docs/http-webhook.schema.json``. No
picture is sent and no thumbnail URL either: one would need the API key in a URL. Each asset
carries its links into Immich and through my.immich.app (``links``); with ``links: shared`` the
body carries the batch's own Immich shared link (``links.shared``, made once and kept). With
``secret`` set, ``X-Sidecar-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes, so a receiver can tell the sidecar from anyone who learnt the URL.

The URL, the header values and the secret are secrets: the target's name stands in for them in
every log line, error and metric label.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, TextIO

import httpx

from sidecar import __version__
from sidecar.clock import utc_now
from sidecar.config.model import KeyPath, QuietHours, Secret
from sidecar.ops.checks import Check, failed, passed
from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    Batch,
    Delivery,
    DeliveryError,
    MediaSource,
    PermanentDeliveryError,
    SecretKey,
    SharedLinkMaker,
    ShareRequest,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
    people_names,
)
from sidecar.targets.links import album_asset_link, album_link, app_link, asset_link, share_link
from sidecar.targets.presentation import (
    LINK_KEYS,
    Presentation,
    presentation_problems,
    read_presentation,
)
from sidecar.targets.words import json_text

log = logging.getLogger(__name__)

BODY_VERSION = 1
SIGNATURE_HEADER = "X-Sidecar-Signature"
# Set by the sidecar itself: a configured header of these names would break the body's meaning
# or its signature.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", SIGNATURE_HEADER.lower(), "x-sidecar-delivery"}
)


@dataclass(frozen=True)
class HttpTarget:
    name: str
    url: Secret
    headers: tuple[tuple[str, Secret], ...] = ()
    secret: Secret | None = None
    quiet_hours: QuietHours | None = None
    presentation: Presentation = field(default_factory=Presentation)


def asset_entry(delivery: Delivery, external_url: str) -> dict[str, Any]:
    """One asset of the body (see docs/http-webhook.schema.json)."""
    asset, album, post = delivery.asset, delivery.album, delivery.post
    return {
        "id": asset.id,
        "type": asset.type,
        "taken_at": asset.taken_at.isoformat() if asset.taken_at else None,
        "people": people_names(asset),
        "city": asset.city,
        "country": asset.country,
        "file_name": asset.original_file_name,
        "link": (
            album_asset_link(external_url, album.id, asset.id)
            if album
            else asset_link(external_url, asset.id)
        ),
        "links": {"immich": asset_link(external_url, asset.id), "app": app_link(asset.id)},
        "album": None
        if album is None
        else {"id": album.id, "name": album.name, "link": album_link(external_url, album.id)},
        "post": None
        if post is None
        else {
            "name": post.post,
            "kind": post.kind,
            "occasion": post.occasion,
            "text": post.text,
            "link": post.link,
        },
    }


def batch_body(batch: Batch, external_url: str, shared: str | None = None) -> dict[str, Any]:
    """The JSON document POSTed for one batch; ``shared``: its shared link, when made."""
    return {
        "version": BODY_VERSION,
        "rule": batch.rule,
        "rules": list(batch.rule_names),
        "target": batch.target,
        "batch": batch.key,
        "links": {"shared": shared} if shared else {},
        "assets": [asset_entry(d, external_url) for d in batch.deliveries],
        **json_text(batch, external_url),  # the message as the family reads it, in its locale
    }


def sign(secret: Secret, body: bytes) -> str:
    """The signature header's value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.reveal().encode(), body, hashlib.sha256).hexdigest()


def encode(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After as seconds (a number or an HTTP date), None when absent or unreadable."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utc_now()).total_seconds())
    except (TypeError, ValueError):
        return None


class HttpWebhookSink:
    """One ``http`` target. A timeout, a connection failure, 429 and 5xx are retried here a few
    times (bounded, honouring Retry-After) and then handed to the dispatcher as temporary; any
    other answer outside 2xx is permanent (the batch becomes a dead letter)."""

    def __init__(
        self,
        target: HttpTarget,
        external_url: str,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 3,
        max_wait: float = 30.0,
        timeout: float = 15.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
        shared_links: SharedLinkMaker | None = None,
    ) -> None:
        self._target = target
        self._shared = shared_links
        self._metrics = metrics
        self._external_url = external_url
        self._own_client = client is None
        # Redirects are not followed: the signed body goes to the configured URL only.
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._max_attempts = max(1, max_attempts)
        self._max_wait = max_wait
        self._sleep = sleep

    @property
    def name(self) -> str:
        return self._target.name

    async def send(self, batch: Batch) -> None:
        try:
            body = encode(batch_body(batch, self._external_url, await self._shared_link(batch)))
            await post_json(
                self._client,
                self._target,
                body,
                batch.key,
                self._max_attempts,
                self._max_wait,
                self._sleep,
                self._count_retried_failure,
            )
        except DeliveryError as error:
            log.warning(
                "http target %s: %s",
                self.name,
                error,
                extra=log_fields(target=self.name, rule=batch.rule, reason=error.reason),
            )
            raise

    async def _shared_link(self, batch: Batch) -> str | None:
        """The batch's shared link (``links: shared``), made before the POST and kept."""
        if self._target.presentation.links != "shared" or self._shared is None:
            return None
        album = batch.deliveries[0].album if batch.deliveries else None
        options = self._target.presentation.shared_links
        key = await self._shared.key_for(
            ShareRequest(
                target=self.name,
                # the batch key, stored before the first attempt (ids for a batch without one)
                message=batch.key or ",".join(str(d.id) for d in batch.deliveries),
                asset_ids=tuple(dict.fromkeys(d.asset.id for d in batch.deliveries)),
                album_id=album.id if album is not None else None,
                expire=options.expire,
                download=options.download,
                metadata=options.metadata,
                description=f"immich-discord-sidecar: {batch.target} ({batch.rule})",
            )
        )
        return share_link(self._external_url, key) if key else None

    def _count_retried_failure(self, error: DeliveryError) -> None:
        """An attempt that failed and is retried here: a failure all the same (the last
        attempt's failure is counted by the dispatcher, which decides what happens next)."""
        if self._metrics is not None:
            self._metrics.notification_failures.labels(target=self.name, reason=error.reason).inc()

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()


async def post_json(
    client: httpx.AsyncClient,
    target: HttpTarget,
    body: bytes,
    delivery_key: str,
    max_attempts: int,
    max_wait: float,
    sleep: Callable[[float], Awaitable[None]],
    retried: Callable[[DeliveryError], None] = lambda _error: None,
) -> None:
    """POST ``body`` to the target, retrying what is worth retrying; raises DeliveryError.
    ``retried`` hears of each failed attempt that is tried again."""
    headers = {name: value.reveal() for name, value in target.headers}
    headers.update(
        {"Content-Type": "application/json", "User-Agent": f"immich-sidecar/{__version__}"}
    )
    if delivery_key:  # the same batch keeps its key across retries: receivers can de-duplicate
        headers["X-Sidecar-Delivery"] = delivery_key
    if target.secret is not None:
        headers[SIGNATURE_HEADER] = sign(target.secret, body)
    for attempt in range(1, max_attempts + 1):
        error = await _post_once(client, target, body, headers)
        if error is None:
            return
        wait = error.retry_after if error.retry_after is not None else 0.5 * 2 ** (attempt - 1)
        if attempt == max_attempts or wait > max_wait:
            raise error
        retried(error)
        log.info(
            "http target %s: %s; retry %d of %d in %.2fs",
            target.name,
            error,
            attempt,
            max_attempts - 1,
            wait,
        )
        await sleep(wait)


async def _post_once(
    client: httpx.AsyncClient, target: HttpTarget, body: bytes, headers: Mapping[str, str]
) -> TemporaryDeliveryError | None:
    """None when the receiver took the body; a temporary error worth retrying; raises a
    permanent one."""
    try:
        response = await client.post(target.url.reveal(), content=body, headers=headers)
    except httpx.TimeoutException:
        return TemporaryDeliveryError("timeout", "the receiver did not answer in time")
    except httpx.TransportError as error:
        return TemporaryDeliveryError(
            "connection", f"could not reach the receiver ({type(error).__name__})"
        )
    status = response.status_code
    if response.is_success:
        return None
    if status == 429:
        return TemporaryDeliveryError(
            "rate_limited", "the receiver answered 429", retry_after=_retry_after(response)
        )
    if status >= 500:
        return TemporaryDeliveryError(
            "server_error", f"the receiver answered {status}", retry_after=_retry_after(response)
        )
    hint = (
        " (redirects are not followed: put the final URL in http.url)"
        if (response.is_redirect)
        else ""
    )
    raise PermanentDeliveryError("rejected", f"the receiver answered {status}{hint}")


class HttpKind(TargetKind[HttpTarget]):
    """``targets.NAME.http: {url, headers, secret}``."""

    keys = ("http",)
    label = ("JSON webhook", "JSON webhooks")
    config_type = HttpTarget
    secrets = (
        SecretKey(("http", "url"), url=True),
        SecretKey(("http", "secret")),
        SecretKey(("http", "headers")),
    )

    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> HttpTarget:
        headers = spec["http"].get("headers", {})
        return HttpTarget(
            name=name,
            url=secrets[("http", "url")],
            headers=tuple((key, Secret(str(value))) for key, value in headers.items()),
            secret=secrets.get(("http", "secret")),
            quiet_hours=quiet,
            presentation=read_presentation(spec),
        )

    def problems(
        self,
        spec: Mapping[str, Any],
        data: Mapping[str, Any],
    ) -> Iterable[tuple[KeyPath, str]]:
        http = spec.get("http")
        headers = http.get("headers") if isinstance(http, dict) else None
        for key in headers if isinstance(headers, dict) else ():
            if key.lower() in RESERVED_HEADERS:
                yield (("http", "headers", key), "is set by the sidecar itself; remove it")
        if spec.get("links") in ("app", "none"):
            yield (
                ("links",),
                "a JSON webhook's links is immich (the default) or shared: each asset always "
                "carries both its Immich link and its my.immich.app link",
            )
        yield from presentation_problems(spec, data, LINK_KEYS)

    def build_sink(self, target: HttpTarget, context: SinkContext) -> HttpWebhookSink:
        return HttpWebhookSink(
            target,
            context.external_url,
            metrics=context.metrics,
            shared_links=context.shared_links,
        )

    async def describe(self, target: HttpTarget, batch: Batch, source: MediaSource) -> list[str]:
        line = f"target {batch.target} (JSON webhook), rule {batch.rule}: one POST of " + (
            f"{len(batch.deliveries)} asset{'s' if len(batch.deliveries) != 1 else ''}"
        )
        if target.presentation.links == "shared":
            line += "; an Immich shared link would be made for it (links.shared)"
        return [line]

    async def check(self, target: HttpTarget, http: httpx.AsyncClient) -> Check:
        # Any request would be acted on by the receiver (an n8n flow runs on a GET too).
        return passed(
            f"target {target.name!r} posts JSON to its URL (not contacted: "
            f"`doctor --send-test {target.name}` posts a test body)"
        )

    async def send_test(
        self, target: HttpTarget, text: str, http: httpx.AsyncClient, out: TextIO
    ) -> Check:
        body = encode(
            {
                "version": BODY_VERSION,
                "rule": "",
                "rules": [],
                "target": target.name,
                "batch": "test",
                "test": True,
                "message": text,
                "assets": [],
            }
        )
        try:
            await post_json(http, target, body, "", 1, 0.0, asyncio.sleep)
        except DeliveryError as error:
            return failed(
                f"the test body for target {target.name!r} was refused ({error})",
                "check http.url and what the receiver expects",
            )
        return passed(f"test body posted to target {target.name!r}")
