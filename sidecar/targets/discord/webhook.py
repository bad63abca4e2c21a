"""Send batches to a Discord channel webhook (no bot needed).

The webhook URL contains its token and is a secret: it is never logged, put into an
exception or a metric label; the target's name stands in for it everywhere.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from sidecar.config.model import KeyPath, QuietHours, Secret
from sidecar.ops.checks import Check, failed, passed
from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    Batch,
    DeliveryError,
    MediaSource,
    MessageRef,
    PermanentDeliveryError,
    SecretKey,
    SentMessages,
    SharedLinkMaker,
    SinkContext,
    TargetKind,
    TemporaryDeliveryError,
)
from sidecar.targets.discord.describe import describe_batch
from sidecar.targets.discord.render.gallery import Buttons
from sidecar.targets.discord.render.message import RenderedMessage
from sidecar.targets.discord.send import BatchSender, ComponentsRefused, MessageTooLarge
from sidecar.targets.presentation import (
    DISCORD_KEYS,
    Presentation,
    presentation_problems,
    read_presentation,
)

log = logging.getLogger(__name__)

NEW_WEBHOOK = (
    "create a webhook (Discord: the channel's settings > Integrations > Webhooks > "
    "New Webhook > Copy Webhook URL) and put its URL in the target's webhook_url"
)


@dataclass(frozen=True)
class WebhookTarget:
    name: str
    url: Secret
    quiet_hours: QuietHours | None = None
    presentation: Presentation = field(default_factory=Presentation)


_WEBHOOK_TOKEN = re.compile(r"(/webhooks/\d+/)[^/?\s\"']+")


class _RedactWebhookTokens(logging.Filter):
    """httpx logs every request URL at INFO; a webhook URL carries its token, so cut it out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(
                _WEBHOOK_TOKEN.sub(r"\1***", str(a)) if "webhooks" in str(a) else a for a in args
            )
        if isinstance(record.msg, str) and "webhooks" in record.msg:
            record.msg = _WEBHOOK_TOKEN.sub(r"\1***", record.msg)
        return True


_REDACTOR = _RedactWebhookTokens()


def install_log_redaction() -> None:
    """Idempotent: attach the token redactor to the loggers that print request URLs."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("retry_after"), int | float):
        return float(body["retry_after"])
    for header in ("Retry-After", "X-RateLimit-Reset-After"):
        value = response.headers.get(header)
        if value is not None:
            try:
                return float(value)
            except ValueError:
                continue
    return None


def _message_ref(response: httpx.Response) -> MessageRef | None:
    """The message Discord made (``wait=true`` answers it); None when the answer does not say."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    ids = [body.get(key) for key in ("channel_id", "id", "guild_id")]
    if not all(isinstance(value, str) and value.isdigit() for value in ids[:2]):
        return None
    guild = ids[2] if isinstance(ids[2], str) and ids[2].isdigit() else None
    return MessageRef(str(ids[0]), str(ids[1]), guild)


def _discord_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])[:200]
    return ""


class WebhookSink:
    """One webhook target. Rate limits are waited out here (bounded); anything else becomes a
    Temporary or Permanent delivery error for the dispatcher to act on."""

    def __init__(
        self,
        target: WebhookTarget,
        thumbnails: MediaSource,
        external_url: str,
        metrics: Metrics,
        *,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 4,
        max_wait: float = 30.0,
        timeout: float = 30.0,
        shared_links: SharedLinkMaker | None = None,
    ) -> None:
        install_log_redaction()
        self._target = target
        self._metrics = metrics
        # A webhook not owned by an application sends link buttons only (no ♥).
        self._sender = BatchSender(
            target.name,
            thumbnails,
            external_url,
            target.presentation,
            shared=shared_links,
            buttons=Buttons(open=True, favourite=False),
            metrics=metrics,
        )
        self._own_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._max_attempts = max(1, max_attempts)
        self._max_wait = max_wait

    @property
    def name(self) -> str:
        return self._target.name

    async def send(self, batch: Batch) -> SentMessages:
        # notifications_sent / notification_failures are counted by the dispatcher
        try:
            return await self._sender.send(batch, self._post)
        except DeliveryError as error:
            log.warning(
                "webhook target %s: %s",
                self.name,
                error,
                extra=log_fields(target=self.name, rule=batch.rule, reason=error.reason),
            )
            raise

    async def close(self) -> None:
        if self._own_client:
            await self._client.aclose()

    async def _post(self, message: RenderedMessage) -> MessageRef | None:
        url = self._target.url.reveal()
        payload = message.payload()
        files: list[tuple[str, tuple[str, bytes, str]]] = [
            (f"files[{index}]", (f.filename, f.data, f.content_type))
            for index, f in enumerate(message.files)
        ]
        # Components (a gallery, link buttons) only count with with_components.
        params = {"wait": "true", **({"with_components": "true"} if message.is_v2 else {})}
        for attempt in range(1, self._max_attempts + 1):
            try:
                if files:
                    response = await self._client.post(
                        url,
                        params=params,
                        data={"payload_json": json.dumps(payload)},
                        files=files,
                    )
                else:  # Discord takes a plain JSON body only when there is nothing to attach
                    response = await self._client.post(url, params=params, json=payload)
            except httpx.TimeoutException as error:
                raise TemporaryDeliveryError("timeout", "Discord did not answer in time") from error
            except httpx.TransportError as error:
                raise TemporaryDeliveryError(
                    "connection", f"could not reach Discord ({type(error).__name__})"
                ) from error
            if response.is_success:
                return _message_ref(response)
            if response.status_code == 429:
                wait = _retry_after(response)
                wait = 1.0 if wait is None else max(0.0, wait)
                if wait > self._max_wait or attempt == self._max_attempts:
                    raise TemporaryDeliveryError(
                        "rate_limited", f"Discord asks to wait {wait:.1f}s", retry_after=wait
                    )
                self._metrics.discord_retries.inc()
                log.info(
                    "webhook target %s: Discord answered HTTP 429 (rate limited); "
                    "retry %d of %d in %.2fs",
                    self.name,
                    attempt,
                    self._max_attempts - 1,
                    wait,
                )
                await asyncio.sleep(wait)
                continue
            raise self._error_for(response, v2=message.is_v2)
        # Not reached: the last attempt returns or raises.
        raise TemporaryDeliveryError("rate_limited", "Discord kept asking to wait")

    def _error_for(self, response: httpx.Response, *, v2: bool = False) -> Exception:
        status = response.status_code
        said = _discord_message(response)
        if status in (401, 403, 404):
            return PermanentDeliveryError(
                "webhook_invalid",
                f"Discord answered {status} for webhook target {self.name!r}: the webhook was "
                "deleted or its URL is wrong; create a new webhook in the channel settings and "
                "update the target's url",
            )
        if status == 413:
            return MessageTooLarge(f"Discord refused the message as too large ({status})")
        if status == 400 and v2:
            return ComponentsRefused(said or "400")
        if status >= 500:
            return TemporaryDeliveryError("discord_server_error", f"Discord answered {status}")
        suffix = f": {said}" if said else ""
        return PermanentDeliveryError(
            "rejected", f"Discord rejected the message ({status}){suffix}"
        )


def webhook_check(target: WebhookTarget, status: int | None, body: Any) -> Check:
    """What GET on the webhook URL said (Discord answers it without posting anything)."""
    name = f"target {target.name!r}"
    if status == 200 and isinstance(body, dict) and body.get("channel_id"):
        return passed(
            f"{name}: webhook {str(body.get('name') or '')!r} posts to channel {body['channel_id']}"
        )
    if status in (401, 404):
        said = body.get("message") if isinstance(body, dict) else None
        return failed(
            f"{name}: Discord does not know this webhook ({status}"
            f"{f' {said}' if said else ''}): it was deleted or its URL is wrong",
            NEW_WEBHOOK,
        )
    if status is None:
        return failed(
            f"{name}: could not reach Discord to check the webhook ({body})",
            "check the network, then run doctor again",
        )
    return failed(
        f"{name}: Discord answered {status} for the webhook URL",
        "check that webhook_url is a Discord webhook URL; " + NEW_WEBHOOK,
    )


class WebhookKind(TargetKind[WebhookTarget]):
    """``targets.NAME.webhook_url`` (or ``webhook_url_file``): a Discord channel webhook."""

    keys = ("webhook_url", "webhook_url_file")
    label = ("webhook", "webhooks")
    config_type = WebhookTarget
    secrets = (SecretKey(("webhook_url",), url=True),)

    def read(
        self,
        name: str,
        spec: Mapping[str, Any],
        secrets: Mapping[tuple[str, ...], Secret],
        quiet: QuietHours | None,
    ) -> WebhookTarget:
        return WebhookTarget(
            name=name,
            url=secrets[("webhook_url",)],
            quiet_hours=quiet,
            presentation=read_presentation(spec),
        )

    def problems(
        self, spec: Mapping[str, Any], data: Mapping[str, Any]
    ) -> Iterable[tuple[KeyPath, str]]:
        return presentation_problems(spec, data, DISCORD_KEYS)

    async def describe(self, target: WebhookTarget, batch: Batch, source: MediaSource) -> list[str]:
        return await describe_batch(batch, source, target.presentation)

    def build_sink(self, target: WebhookTarget, context: SinkContext) -> WebhookSink:
        return WebhookSink(
            target,
            context.thumbnails,
            context.external_url,
            context.metrics,
            shared_links=context.shared_links,
        )

    async def check(self, target: WebhookTarget, http: httpx.AsyncClient) -> Check:
        try:
            response = await http.get(target.url.reveal())
        except httpx.HTTPError as err:
            return webhook_check(target, None, type(err).__name__)
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        return webhook_check(target, response.status_code, body)

    async def send_test(
        self, target: WebhookTarget, text: str, http: httpx.AsyncClient, out: TextIO
    ) -> Check:
        name = target.name
        try:
            response = await http.post(
                target.url.reveal(),
                params={"wait": "true"},
                json={"content": text, "allowed_mentions": {"parse": []}},
            )
        except httpx.HTTPError as err:
            return failed(
                f"could not post the test message to {name!r} ({type(err).__name__})",
                "check the network",
            )
        if response.is_success:
            return passed(f"test message posted to target {name!r}")
        return failed(
            f"Discord refused the test message for {name!r} ({response.status_code})", NEW_WEBHOOK
        )
