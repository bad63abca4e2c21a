"""The webhook sink against a respx-mocked Discord webhook endpoint."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from email.parser import BytesParser
from email.policy import HTTP
from typing import cast

import httpx
import pytest
import respx

from sidecar.config.model import Secret
from sidecar.immich.models import VideoFile, VideoTooLarge
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import PermanentDeliveryError, TemporaryDeliveryError
from sidecar.targets.discord.webhook import WebhookSink, WebhookTarget
from sidecar.targets.presentation import Presentation
from tests.test_render import make_asset, make_batch

TOKEN = "s3cr3t-webhook-token"
URL = f"https://discord.com/api/webhooks/123456/{TOKEN}"


class FakeThumbnails:
    """Real bytes for every asset, like Immich's preview endpoint."""

    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.calls: list[str] = []
        self.missing = missing

    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]:
        self.calls.append(asset_id)
        if asset_id in self.missing:
            raise LookupError404()
        return b"\xff\xd8\xff\xe0JPEG-" + asset_id.encode(), "image/jpeg"

    async def video_playback(self, asset_id: str, max_bytes: int) -> VideoFile | VideoTooLarge:
        """Every video is a short clip, as a phone's."""
        return VideoFile(b"\x00\x00\x00\x18ftypmp42" + asset_id.encode(), "video/mp4")


class LookupError404(Exception):
    status = 404


def parse_multipart(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        assert isinstance(name, str)
        parts[name] = (part.get_filename(), cast(bytes, part.get_payload(decode=True)))
    return parts


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def sink(metrics: Metrics, layout: str = "gallery", **kwargs) -> WebhookSink:
    target = WebhookTarget("garden-hook", Secret(URL), presentation=Presentation(layout=layout))
    return WebhookSink(
        target, kwargs.pop("thumbs", FakeThumbnails()), "https://p.example", metrics, **kwargs
    )


def sample(metrics: Metrics, name: str, labels: dict[str, str] | None = None) -> float:
    value = metrics.registry.get_sample_value(name, labels or {})
    return value or 0.0


@respx.mock
async def test_a_gallery_is_posted_with_components_and_the_flag(metrics):
    """The default layout: one components v2 message (``with_components=true``, the flag, no
    content or embeds), its text naming who is in it and pinging the rule's role, its gallery
    referencing the attached picture, and a link button (a webhook sends no ♥)."""
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    s = sink(metrics)
    await s.send(make_batch([make_asset(1)], roles=(77,)))
    await s.close()
    request = route.calls[0].request
    assert request.url.params["with_components"] == "true"
    parts = parse_multipart(request)
    payload = json.loads(parts["payload_json"][1])
    assert payload["flags"] == 1 << 15
    assert "content" not in payload and "embeds" not in payload
    text, gallery, row = payload["components"]
    assert text["type"] == 10 and text["content"].startswith("<@&77> ")
    assert "Alice" in text["content"]
    assert gallery == {
        "type": 12,
        "items": [{"media": {"url": "attachment://asset-1.jpg"}, "description": "Alice"}],
    }
    assert row["components"] == [
        {
            "type": 2,
            "style": 5,
            "label": "Open in Immich",
            "url": "https://p.example/photos/asset-1",
        }
    ]
    assert payload["allowed_mentions"]["roles"] == [77]
    assert parts["files[0]"] == ("asset-1.jpg", b"\xff\xd8\xff\xe0JPEG-asset-1")


@respx.mock
async def test_posts_multipart_with_payload_json_and_picture(metrics):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    asset = make_asset(1)
    s = sink(metrics, layout="embeds")
    await s.send(make_batch([asset], roles=(77,)))
    await s.close()
    assert route.call_count == 1
    request = route.calls[0].request
    assert request.url.params["wait"] == "true"
    parts = parse_multipart(request)
    payload = json.loads(parts["payload_json"][1])
    assert payload["allowed_mentions"] == {
        "parse": [],
        "roles": [77],
        "users": [],
        "replied_user": False,
    }
    assert payload["embeds"][0]["image"]["url"] == "attachment://asset-1.jpg"
    assert payload["attachments"] == [{"id": 0, "filename": "asset-1.jpg"}]
    assert parts["files[0]"] == ("asset-1.jpg", b"\xff\xd8\xff\xe0JPEG-asset-1")


@respx.mock
@pytest.mark.parametrize("layout", ["gallery", "embeds"])
async def test_batch_of_twelve_is_two_requests(metrics, layout):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    await sink(metrics, layout).send(make_batch([make_asset(i) for i in range(12)]))
    assert route.call_count == 2
    payloads = [json.loads(parse_multipart(c.request)["payload_json"][1]) for c in route.calls]
    if layout == "embeds":
        counts = [len(p["embeds"]) for p in payloads]
    else:
        counts = [len(p["components"][1]["items"]) for p in payloads]
    assert counts == [10, 2]


@respx.mock
async def test_rate_limit_is_waited_out_and_counted(metrics):
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(429, json={"retry_after": 0.01, "global": False}),
            httpx.Response(429, headers={"Retry-After": "0.01"}),
            httpx.Response(429, headers={"X-RateLimit-Reset-After": "0.01"}),
            httpx.Response(200, json={"id": "1"}),
        ]
    )
    await sink(metrics).send(make_batch([make_asset(1)]))
    assert route.call_count == 4
    assert sample(metrics, "immich_sidecar_discord_retries_total") == 3


@respx.mock
async def test_rate_limit_attempts_are_bounded(metrics, caplog):
    caplog.set_level(logging.INFO, logger="sidecar.targets.discord.webhook")
    route = respx.post(URL).mock(return_value=httpx.Response(429, json={"retry_after": 0.01}))
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink(metrics, max_attempts=3).send(make_batch([make_asset(1)]))
    assert route.call_count == 3
    assert caught.value.reason == "rate_limited"
    # the third answer was not retried: only the two retries count
    assert sample(metrics, "immich_sidecar_discord_retries_total") == 2
    lines = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert [line.split(" in ")[0] for line in lines] == [
        f"webhook target garden-hook: Discord answered HTTP 429 (rate limited); retry {n} of 2"
        for n in (1, 2)
    ], lines


@respx.mock
async def test_long_rate_limit_is_handed_back_with_retry_after(metrics):
    route = respx.post(URL).mock(return_value=httpx.Response(429, json={"retry_after": 600}))
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink(metrics).send(make_batch([make_asset(1)]))
    assert route.call_count == 1
    assert caught.value.retry_after == 600


@respx.mock
@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_temporary(metrics, status):
    respx.post(URL).mock(return_value=httpx.Response(status))
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink(metrics).send(make_batch([make_asset(1)]))
    assert caught.value.reason == "discord_server_error"


@respx.mock
async def test_timeout_is_temporary(metrics):
    respx.post(URL).mock(side_effect=httpx.ConnectTimeout("timed out"))
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink(metrics).send(make_batch([make_asset(1)]))
    assert caught.value.reason == "timeout"


@respx.mock
@pytest.mark.parametrize("status", [401, 403, 404])
async def test_deleted_webhook_is_permanent_and_says_what_to_fix(metrics, status):
    respx.post(URL).mock(
        return_value=httpx.Response(status, json={"message": "Unknown Webhook", "code": 10015})
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        await sink(metrics).send(make_batch([make_asset(1)]))
    assert caught.value.reason == "webhook_invalid"
    assert "garden-hook" in str(caught.value)
    assert "create a new webhook" in str(caught.value)
    assert TOKEN not in str(caught.value)


@respx.mock
async def test_asset_gone_from_immich_is_sent_without_picture(metrics):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    thumbs = FakeThumbnails(missing=frozenset({"asset-1"}))
    await sink(metrics, thumbs=thumbs).send(make_batch([make_asset(1)]))
    request = route.calls[0].request
    assert request.headers["content-type"] == "application/json"
    types = [c["type"] for c in json.loads(request.content)["components"]]
    assert types == [10, 1]  # no gallery without a picture: the text and its link
    await sink(metrics, "embeds", thumbs=thumbs).send(make_batch([make_asset(1)]))
    assert "image" not in json.loads(route.calls[1].request.content)["embeds"][0]


@respx.mock
@pytest.mark.parametrize(("layout", "pictures"), [("gallery", 10), ("embeds", 4)])
async def test_summary_fetches_only_the_pictures_it_shows(metrics, layout, pictures):
    respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    thumbs = FakeThumbnails()
    await sink(metrics, layout, thumbs=thumbs).send(make_batch([make_asset(i) for i in range(50)]))
    assert len(thumbs.calls) == pictures


@respx.mock
async def test_webhook_token_never_logged(metrics, caplog):
    caplog.set_level(logging.DEBUG)
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(429, json={"retry_after": 0.01}),
            httpx.Response(404, json={"message": "Unknown Webhook"}),
        ]
    )
    s = sink(metrics)
    # httpx logs the URL of every request; make sure one such record passes the redactor too
    logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", URL, "HTTP/1.1 404")
    with pytest.raises(PermanentDeliveryError):
        await s.send(make_batch([make_asset(1)]))
    assert caplog.records
    assert TOKEN not in caplog.text
    assert "garden-hook" in caplog.text


@respx.mock
async def test_a_failure_after_the_first_message_reports_what_was_sent(metrics):
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, json={"id": "1"}),
            httpx.Response(404, json={"message": "Unknown Webhook"}),
        ]
    )
    batch = make_batch([make_asset(i) for i in range(12)])
    with pytest.raises(PermanentDeliveryError) as caught:
        await sink(metrics).send(batch)
    assert caught.value.sent_ids == tuple(d.id for d in batch.deliveries[:10])


class ImmichDown(FakeThumbnails):
    async def asset_thumbnail(self, asset_id: str, size: str = "preview") -> tuple[bytes, str]:
        raise httpx.ConnectError("down")


@respx.mock
async def test_immich_down_holds_the_batch_at_first_then_sends_without_pictures(metrics):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json={"id": "1"}))
    asset = make_asset(1)
    with pytest.raises(TemporaryDeliveryError, match="immich_unavailable"):
        await sink(metrics, thumbs=ImmichDown()).send(make_batch([asset]))
    assert route.call_count == 0
    tired = make_batch([asset])
    tired = replace(tired, deliveries=tuple(replace(d, attempts=3) for d in tired.deliveries))
    await sink(metrics, thumbs=ImmichDown()).send(tired)
    assert route.call_count == 1
    assert [c["type"] for c in json.loads(route.calls[0].request.content)["components"]] == [10, 1]
