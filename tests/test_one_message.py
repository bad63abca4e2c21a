"""One message per asset per target (issue 23): two rules that send the same asset to the same
target make one message there, naming both rules and carrying both rules' mentions; a rule that
matches an asset already posted there does not post it again; exactly once across restarts."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta

import pytest

from sidecar.config.model import Secret
from sidecar.engine.dispatch.dispatcher import Dispatcher, RuleOptions
from sidecar.engine.store.database import Store
from sidecar.immich.models import PersonRef
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import AlbumRef, Batch, TemporaryDeliveryError
from sidecar.targets.console import ConsoleSink
from sidecar.targets.discord.render.batch import render_batch
from sidecar.targets.http_webhook import HttpTarget, HttpWebhookSink
from tests.factories import T0, make_asset
from tests.fakes.http_receiver import Receiver
from tests.test_dispatch import Clock, FlakySink, sample
from tests.test_http_webhook import body_validator

GRANDMA = PersonRef("p-grandma", "Grandma")
OPTIONS = {
    "grandma": RuleOptions(mention_roles=(11,)),
    "everything": RuleOptions(mention_roles=(22,)),
}


def options(rule: str) -> RuleOptions:
    return OPTIONS.get(rule, RuleOptions())


@pytest.fixture
def env(tmp_path):
    store = Store.open(tmp_path / "state.db")
    clock = Clock()
    metrics = Metrics()
    yield store, metrics, clock, Dispatcher(store, metrics, clock)
    store.close()


async def test_two_rules_to_one_target_make_one_message(env):
    store, metrics, _, dispatcher = env
    photo, other = make_asset(people=(GRANDMA,)), make_asset()
    store.enqueue(
        [
            ("grandma", "family", photo),
            ("everything", "family", photo),
            ("everything", "family", other),
        ],
        T0,
    )
    sink = FlakySink()
    dispatcher.configure({"family": sink}, options)
    assert await dispatcher.drain() == 3  # every rule's row is delivered
    by_asset = {d.asset.id: (b, d) for b in sink.accepted for d in b.deliveries}
    assert sorted(by_asset) == sorted([photo.id, other.id])  # each asset once
    batch, delivery = by_asset[photo.id]
    assert delivery.rules == ("grandma", "everything")
    assert batch.rule_names == ("grandma", "everything")
    assert batch.mention_roles == (11, 22)  # both rules' mentions, each once
    assert by_asset[other.id][0].rule_names == ("everything",)
    assert store.counts().sent == 3 and store.counts().pending == 0
    for rule in ("grandma", "everything"):
        labels = {"rule": rule, "target": "family"}
        assert sample(metrics, "immich_sidecar_notifications_sent_total", **labels) == (
            1 if rule == "grandma" else 2
        )


async def test_the_discord_message_names_both_rules_and_pings_both_roles(env):
    store, _, _, dispatcher = env
    photo = make_asset(people=(GRANDMA,))
    store.enqueue([("grandma", "family", photo), ("everything", "family", photo)], T0)
    sink = FlakySink()
    dispatcher.configure({"family": sink}, options)
    await dispatcher.drain()
    [batch] = sink.accepted
    [message] = render_batch(batch, "https://photos.example", {})
    assert message.content.startswith("<@&11> <@&22> ")
    assert message.allowed_mentions["roles"] == [11, 22]
    assert len(message.embeds) == 1  # the photo once
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Rule"] == "grandma, everything"
    assert message.delivery_ids == (batch.deliveries[0].id,)


async def test_the_json_body_lists_both_rule_names(env):
    store, _, _, dispatcher = env
    photo = make_asset(people=(GRANDMA,))
    store.enqueue([("grandma", "hook", photo), ("everything", "hook", photo)], T0)
    async with Receiver() as receiver:
        sink = HttpWebhookSink(HttpTarget("hook", Secret(receiver.url + "/in")), "https://x")
        dispatcher.configure({"hook": sink}, options)
        try:
            await dispatcher.drain()
        finally:
            await sink.close()
    [request] = receiver.requests
    body = json.loads(request.body)
    assert list(body_validator().iter_errors(body)) == []
    assert body["rule"] == "grandma" and body["rules"] == ["grandma", "everything"]
    assert [a["id"] for a in body["assets"]] == [photo.id]


async def test_the_console_prints_one_line_naming_both_rules(env):
    store, _, _, dispatcher = env
    photo = make_asset(people=(GRANDMA,))
    store.enqueue([("grandma", "stdout", photo), ("everything", "stdout", photo)], T0)
    out = io.StringIO()
    dispatcher.configure({"stdout": ConsoleSink("https://x", out)}, options)
    await dispatcher.drain()
    [line] = out.getvalue().splitlines()
    assert json.loads(line)["rules"] == ["grandma", "everything"]


async def test_other_targets_and_other_albums_get_their_own_message(env):
    store, _, _, dispatcher = env
    photo = make_asset()
    store.enqueue([("a", "one", photo), ("b", "two", photo)], T0)
    store.enqueue([("trip", "one", photo)], T0, album=AlbumRef("alb-1", "Trip"))
    one, two = FlakySink(), FlakySink()
    dispatcher.configure({"one": one, "two": two}, options)
    await dispatcher.drain()
    assert sorted(b.rule_names for b in one.accepted) == [("a",), ("trip",)]
    assert [b.rule_names for b in two.accepted] == [("b",)]


async def test_a_rule_that_matches_later_does_not_post_the_asset_again(env, caplog):
    """The rule without people posted the photo; the face is recognised later and the people
    rule matches it: the family already has it in the channel."""
    store, metrics, _, dispatcher = env
    photo = make_asset()
    sink = FlakySink()
    dispatcher.configure({"family": sink}, options)
    store.enqueue([("everything", "family", photo)], T0)
    await dispatcher.drain()
    [first] = sink.accepted
    store.enqueue([("grandma", "family", make_asset(asset_id=photo.id, people=(GRANDMA,)))], T0)
    with caplog.at_level(logging.INFO):
        assert await dispatcher.drain() == 0
    assert len(sink.accepted) == 1  # not posted twice
    rows = {r.rule: r for r in store.rows()}
    assert rows["grandma"].state == "sent"
    assert store.counts().pending == 0
    keys = dict(store.connection.execute("SELECT rule, batch_key FROM outbox"))
    assert keys == {"everything": first.key, "grandma": first.key}  # it rode on that message
    said = [r.getMessage() for r in caplog.records if "already posted" in r.getMessage()]
    assert said == [
        "target family, rule grandma: 1 asset already posted there by rule everything; "
        "not posted again"
    ]
    labels = {"rule": "grandma", "target": "family"}
    assert sample(metrics, "immich_sidecar_notifications_sent_total", **labels) == 0


async def test_a_rule_that_matches_while_the_first_message_retries_waits_for_it(env):
    store, _, clock, dispatcher = env
    photo = make_asset()
    sink = FlakySink([TemporaryDeliveryError("discord_unavailable", retry_after=30)])
    dispatcher.configure({"family": sink}, options)
    store.enqueue([("everything", "family", photo)], T0)
    await dispatcher.drain()  # failed: its batch is fixed, retried in 30 s
    store.enqueue([("grandma", "family", photo)], T0)
    assert await dispatcher.drain() == 0
    assert sink.accepted == []
    assert store.next_due_at() == T0 + timedelta(seconds=30)  # waits, no busy loop
    clock.now += timedelta(seconds=30)
    assert await dispatcher.drain() == 1  # the first batch, as it was formed
    assert await dispatcher.drain() == 0  # the later rule's row: already there
    [sent] = sink.accepted
    assert [d.rules for d in sent.deliveries] == [("everything",)]
    assert store.counts().sent == 2 and store.counts().pending == 0


async def test_a_folded_message_is_the_same_after_a_restart(tmp_path):
    """The batch is fixed before the first send: after a crash the retry folds the same rows
    under the same key (one message, the same nonce), whatever was queued meanwhile."""
    state = tmp_path / "state.db"
    photo = make_asset()
    store = Store.open(state)
    clock = Clock()
    first_sink = FlakySink([TemporaryDeliveryError("connection", retry_after=5)])
    dispatcher = Dispatcher(store, Metrics(), clock)
    dispatcher.configure({"family": first_sink}, options)
    store.enqueue([("grandma", "family", photo), ("everything", "family", photo)], T0)
    await dispatcher.drain()
    store.close()

    store = Store.open(state)  # the restart
    store.enqueue([("late", "family", photo)], T0)  # a third rule, after the batch was formed
    clock.now += timedelta(seconds=5)
    sink = FlakySink()
    again = Dispatcher(store, Metrics(), clock)
    again.configure({"family": sink}, options)
    assert await again.drain() == 2
    assert await again.drain() == 0
    [batch] = sink.accepted
    assert batch.rule_names == ("grandma", "everything")
    [delivery] = batch.deliveries
    first_key = {r.rule: r for r in store.rows()}
    assert first_key["late"].state == "sent"
    rendered = render_batch(batch, "https://x", {})
    assert [m.delivery_ids for m in rendered] == [(delivery.id,)]
    assert store.counts().sent == 3
    store.close()


async def test_quiet_hours_of_one_rule_do_not_hold_a_message_another_rule_sends_now(env):
    store, _, _, dispatcher = env
    photo = make_asset()
    store.enqueue([("grandma", "family", photo), ("everything", "family", photo)], T0)
    sink = FlakySink()
    later = T0 + timedelta(hours=8)

    def quiet(target: str, rule: str, now: datetime) -> datetime | None:
        return later if rule == "everything" else None

    dispatcher.configure({"family": sink}, options, quiet)
    assert await dispatcher.drain() == 2
    [batch] = sink.accepted
    assert batch.rule_names == ("grandma", "everything")


def test_a_batch_names_its_rule_alone_when_it_is_one():
    batch = Batch("kids", "t", ())
    assert batch.rule_names == ("kids",)
