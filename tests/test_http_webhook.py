"""The generic JSON webhook target (``targets.NAME.http``): its config, its body and its
signature, and what each answer of the receiver means, against a real receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from jsonschema import Draft202012Validator

from sidecar.cli.commands import describe
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Secret
from sidecar.engine.dispatch.dispatcher import Dispatcher, RuleOptions
from sidecar.engine.store.database import Store
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    AlbumRef,
    Delivery,
    PermanentDeliveryError,
    PostRef,
    TemporaryDeliveryError,
)
from sidecar.targets.http_webhook import HttpKind, HttpTarget, HttpWebhookSink
from sidecar.targets.registry import kind_of
from tests.config_helpers import REPO_ROOT, write_config
from tests.factories import T0
from tests.factories import make_asset as factory_asset
from tests.fakes.http_receiver import Receiver
from tests.test_render import make_asset, make_batch

BODY_SCHEMA = REPO_ROOT / "docs" / "http-webhook.schema.json"
SECRET = "hmac-s3cr3t-0004"
TOKEN = "bearer-s3cr3t-0005"
EXTERNAL = "https://photos.example.org"


def body_validator() -> Draft202012Validator:
    schema = json.loads(BODY_SCHEMA.read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def verify(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
async def receiver():
    async with Receiver() as running:
        yield running


def sink_for(
    receiver: Receiver,
    path: str = "/hook",
    *,
    secret: str | None = SECRET,
    waits: Waits | None = None,
    **kw,
) -> HttpWebhookSink:
    target = HttpTarget(
        "automations",
        Secret(receiver.url + path),
        headers=(("Authorization", Secret(f"Bearer {TOKEN}")),),
        secret=Secret(secret) if secret else None,
    )
    return HttpWebhookSink(target, EXTERNAL, sleep=waits or Waits(), **kw)


async def test_one_signed_json_post_per_batch_matching_the_schema(receiver):
    sink = sink_for(receiver)
    batch = replace(make_batch([make_asset(1), make_asset(2, people=())]), key="batch-1")
    try:
        await sink.send(batch)
    finally:
        await sink.close()
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["X-Sidecar-Delivery"] == "batch-1"
    assert verify(SECRET, request.body, request.headers["X-Sidecar-Signature"])
    assert not verify("another secret", request.body, request.headers["X-Sidecar-Signature"])
    body = json.loads(request.body)
    assert list(body_validator().iter_errors(body)) == []
    assert (body["version"], body["rule"], body["target"], body["batch"]) == (
        1,
        "family",
        "family-channel",
        "batch-1",
    )
    first, second = body["assets"]
    assert first["id"] == "asset-1" and first["type"] == "IMAGE"
    assert first["people"] == ["Alice"] and second["people"] == []
    assert first["taken_at"] == "2024-05-01T10:30:00+00:00"
    assert (first["city"], first["country"]) == ("Lyon", "France")
    assert first["link"] == f"{EXTERNAL}/photos/asset-1"
    assert first["album"] is None and first["post"] is None
    assert "thumbnail" not in request.body.decode()


async def test_album_and_post_deliveries_say_where_they_come_from(receiver):
    album = Delivery(1, "trip", "t", make_asset(1), album=AlbumRef("alb-1", "Trip"))
    post = Delivery(
        2,
        "memories",
        "t",
        make_asset(2),
        post=PostRef(
            "memories", "memories", "2026-12-01", "2023", "3 years ago today", "https://x/m"
        ),
    )
    sink = sink_for(receiver, secret=None)
    try:
        await sink.send(replace(make_batch([]), deliveries=(album, post)))
    finally:
        await sink.close()
    [request] = receiver.requests
    assert "X-Sidecar-Signature" not in request.headers  # no secret, no signature
    body = json.loads(request.body)
    assert list(body_validator().iter_errors(body)) == []
    first, second = body["assets"]
    assert first["album"] == {"id": "alb-1", "name": "Trip", "link": f"{EXTERNAL}/albums/alb-1"}
    assert first["link"] == f"{EXTERNAL}/albums/alb-1/photos/asset-1"
    assert second["post"]["text"] == "3 years ago today" and second["post"]["kind"] == "memories"


async def test_server_errors_and_429_are_retried_with_the_same_body(receiver):
    receiver.answer("/hook", 500, 429, headers={"Retry-After": "2"})
    waits = Waits()
    sink = sink_for(receiver, waits=waits)
    try:
        await sink.send(make_batch([make_asset(1)]))
    finally:
        await sink.close()
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert waits.seconds == [2.0, 2.0]  # Retry-After honoured (given with the 500 and the 429)


async def test_a_receiver_still_failing_is_a_temporary_failure(receiver):
    receiver.answer("/hook", 503, 503, 503)
    waits = Waits()
    sink = sink_for(receiver, waits=waits)
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink.send(make_batch([make_asset(1)]))
    await sink.close()
    assert caught.value.reason == "server_error"
    assert len(receiver.requests) == 3 and waits.seconds == [0.5, 1.0]


async def test_every_failed_attempt_is_counted_once_also_when_a_retry_succeeds(receiver, tmp_path):
    """A 500 retried with success within the send is still a failed attempt: counted once (the
    sink counts the attempts it retries, the dispatcher the one it hands on)."""
    store = Store.open(tmp_path / "state.db")
    metrics = Metrics()
    dispatcher = Dispatcher(store, metrics, lambda: T0)
    sink = sink_for(receiver, metrics=metrics)
    dispatcher.configure({"automations": sink}, lambda _rule: RuleOptions())

    def failures(reason: str) -> float:
        labels = {"target": "automations", "reason": reason}
        found = metrics.registry.get_sample_value(
            "immich_sidecar_notification_failures_total", labels
        )
        return found or 0.0

    try:
        receiver.answer("/hook", 500)
        store.enqueue([("kids", "automations", factory_asset())], T0)
        assert await dispatcher.drain() == 1
        assert failures("server_error") == 1
        receiver.answer("/hook", 503, 503, 503)  # all three attempts of the next batch fail
        store.enqueue([("kids", "automations", factory_asset())], T0)
        assert await dispatcher.drain() == 0
        assert failures("server_error") == 1 + 3
    finally:
        await sink.close()
        store.close()


@pytest.mark.parametrize("status", [400, 401, 404, 410, 302])
async def test_other_answers_are_permanent_and_not_retried(receiver, status):
    receiver.answer("/hook", status)
    sink = sink_for(receiver)
    with pytest.raises(PermanentDeliveryError) as caught:
        await sink.send(make_batch([make_asset(1)]))
    await sink.close()
    assert caught.value.reason == "rejected" and str(status) in str(caught.value)
    assert len(receiver.requests) == 1  # a redirect is not followed either


async def test_a_timeout_is_temporary(receiver):
    receiver.delay("/slow", 2.0)
    sink = sink_for(receiver, "/slow", max_attempts=1, client=httpx.AsyncClient(timeout=0.2))
    with pytest.raises(TemporaryDeliveryError) as caught:
        await sink.send(make_batch([make_asset(1)]))
    await sink.close()
    assert caught.value.reason == "timeout"


async def test_no_secret_in_errors_or_log_lines(receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.answer("/hook/s3cr3t-path-0006", 500, 500, 404)
    sink = sink_for(receiver, "/hook/s3cr3t-path-0006")
    with pytest.raises(PermanentDeliveryError) as caught:
        await sink.send(make_batch([make_asset(1)]))
    await sink.close()
    said = str(caught.value) + "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("sidecar")
    )
    assert "automations" in said
    for secret in ("s3cr3t-path-0006", SECRET, TOKEN):
        assert secret not in said


CONFIG = """\
immich:
  url: http://immich:2283
  api_key: key
targets:
  automations:
    http:
      url: "${HOOK_URL}"
      secret: "${HOOK_SECRET}"
      headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
rules:
  - name: kids
    people: {any: [Alice]}
    targets: [automations]
"""
ENV = {
    "HOOK_URL": "https://n8n.example/webhook/s3cr3t-0007",
    "HOOK_SECRET": SECRET,
    "HOOK_TOKEN": TOKEN,
}


def test_config_reads_the_http_target(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, CONFIG), ENV)
    target = settings.targets["automations"]
    assert target == HttpTarget(
        "automations",
        Secret(ENV["HOOK_URL"]),
        (("Authorization", Secret(f"Bearer {TOKEN}")),),
        Secret(SECRET),
    )
    assert isinstance(kind_of(target), HttpKind)
    assert "1 target (1 JSON webhook)" in describe(settings)
    assert ENV["HOOK_URL"] not in repr(settings) and SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        (
            'url: "${HOOK_URL}"',
            "targets.automations.http.url",
            "expected an http:// or https:// URL",
        ),
        (
            "headers: {Authorization",
            "targets.automations.http.headers.X-Sidecar-Signature",
            "is set by the sidecar itself",
        ),
        (
            "secret: ",
            "targets.automations.http.secretive",
            "'secretive' is not allowed here (did you mean 'secret'?)",
        ),
    ],
)
def test_bad_http_targets_are_explained_without_echoing_secrets(
    tmp_path: Path,
    change: str,
    where: str,
    message: str,
) -> None:
    broken = {
        'url: "${HOOK_URL}"': CONFIG.replace('url: "${HOOK_URL}"', 'url: "ftp://s3cr3t-0008"'),
        "headers: {Authorization": CONFIG.replace(
            "headers: {Authorization", 'headers: {X-Sidecar-Signature: "x", Authorization'
        ),
        "secret: ": CONFIG.replace("secret: ", "secretive: "),
    }[change]
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path, broken), ENV)
    [line] = caught.value.lines()
    assert f": {where}: {message}" in line
    assert "s3cr3t" not in line
