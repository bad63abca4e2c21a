"""The real ``immich-sidecar run`` process posting to JSON webhook receivers on 127.0.0.1: a
signed body the receiver can verify, a 500 retried, a 404 kept as a dead letter."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest

from sidecar.engine.store.database import Store
from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.fakes.http_receiver import Receiver
from tests.test_http_webhook import body_validator, verify

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "e2e-hmac-s3cr3t"
RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [signed, flaky, gone]
    """)


async def test_http_targets_sign_retry_and_dead_letter(tmp_path):
    async with FakeImmich() as immich, Receiver() as receiver:
        alice = immich.add_person("Alice")
        receiver.answer("/flaky", 500)
        receiver.answer("/gone", 404)
        config = tmp_path / "config.yaml"
        state = tmp_path / "state.db"
        port = free_port()
        targets = textwrap.dedent(f"""\
            signed: {{http: {{url: "{receiver.url}/signed", secret: "${{HOOK_SECRET}}"}}}}
            flaky: {{http: {{url: "{receiver.url}/flaky"}}}}
            gone: {{http: {{url: "{receiver.url}/gone"}}}}
            """)
        write_config(
            config,
            immich_url=immich.url,
            state=state,
            rules=RULES,
            targets=targets,
            metrics_port=port,
        )
        process = SidecarProcess(
            config, {"IMMICH_API_KEY": immich.api_key, "HOOK_SECRET": SECRET}, port
        )
        await process.start()
        try:
            asset = immich.add_asset(created_at=datetime.now(UTC), people=(alice,))
            await process.wait_until(
                lambda: bool(receiver.to("/signed")) and len(receiver.to("/flaky")) >= 2,
                "the signed post and the retried one",
            )
            await process.wait_for_metric("immich_sidecar_outbox_dead", "", 1)
            await process.wait_for_polls(2)  # more polls: nothing is sent again
            # The 500 retried with success is a failed attempt all the same.
            flaky = 'reason="server_error",target="flaky"'
            assert await process.metric("immich_sidecar_notification_failures_total", flaky) == 1
        finally:
            assert await process.stop() == 0
    [signed] = receiver.to("/signed")
    assert signed.headers["Content-Type"] == "application/json"
    assert verify(SECRET, signed.body, signed.headers["X-Sidecar-Signature"])
    body = json.loads(signed.body)
    assert list(body_validator().iter_errors(body)) == []
    assert body["rule"] == "kids" and body["target"] == "signed"
    [entry] = body["assets"]
    assert entry["id"] == asset and entry["people"] == ["Alice"]
    assert entry["link"] == f"https://photos.example.test/photos/{asset}"
    first, retry = receiver.to("/flaky")  # the 500, then the same body again
    assert first.body == retry.body and "X-Sidecar-Signature" not in retry.headers
    assert len(receiver.to("/gone")) == 1  # a 404 is not retried
    store = Store.open(state)
    try:
        rows = {row.target: row for row in store.rows()}
    finally:
        store.close()
    assert (rows["signed"].state, rows["flaky"].state) == ("sent", "sent")
    assert rows["gone"].state == "failed" and "404" in (rows["gone"].last_error or "")
    assert not any(SECRET in line for line in process.stderr)


async def test_two_sidecars_posting_to_one_receiver_send_distinct_delivery_ids(tmp_path):
    """Each sidecar numbers its own outbox from 1: the ids a receiver de-duplicates on (the
    X-Sidecar-Delivery header and the body's batch) must still differ between them."""
    async with FakeImmich() as immich, Receiver() as receiver:
        alice = immich.add_person("Alice")
        processes = []
        for name in ("first", "second"):
            config, port = tmp_path / f"{name}.yaml", free_port()
            write_config(
                config,
                immich_url=immich.url,
                state=tmp_path / f"{name}.db",
                rules="- {name: kids, people: {any: [Alice]}, targets: [hook]}",
                targets=f'hook: {{http: {{url: "{receiver.url}/hook"}}}}',
                metrics_port=port,
            )
            processes.append(SidecarProcess(config, {"IMMICH_API_KEY": immich.api_key}, port))
        try:
            for process in processes:
                await process.start()
            asset = immich.add_asset(created_at=datetime.now(UTC), people=(alice,))
            await processes[0].wait_until(
                lambda: len(receiver.to("/hook")) >= 2, "a post from each sidecar"
            )
        finally:
            for process in processes:
                assert await process.stop() == 0
    posts = receiver.to("/hook")
    assert len(posts) == 2
    bodies = [json.loads(post.body) for post in posts]
    assert [b["assets"][0]["id"] for b in bodies] == [asset, asset]
    headers = {post.headers["X-Sidecar-Delivery"] for post in posts}
    assert len(headers) == 2 and {b["batch"] for b in bodies} == headers
