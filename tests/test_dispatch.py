from __future__ import annotations

import io
import json
import uuid
from datetime import timedelta

import pytest

from sidecar.engine.dispatch.dispatcher import MAX_ATTEMPTS, Dispatcher, RuleOptions, retry_delay
from sidecar.engine.store.database import Store
from sidecar.immich.models import PersonRef
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import Batch, PermanentDeliveryError, TemporaryDeliveryError
from sidecar.targets.console import ConsoleSink
from tests.factories import T0, make_asset


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


class FlakySink:
    """A sink that fails in a scripted way, then records what it accepted."""

    def __init__(self, failures=()):
        self.failures = list(failures)
        self.accepted: list[Batch] = []

    async def send(self, batch):
        if self.failures:
            raise self.failures.pop(0)
        self.accepted.append(batch)

    async def close(self):
        pass


@pytest.fixture
def env(tmp_path):
    store = Store.open(tmp_path / "state.db")
    metrics, clock = Metrics(), Clock()
    yield store, metrics, clock, Dispatcher(store, metrics, clock)
    store.close()


def sample(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels) or 0


async def test_console_sink_prints_one_json_line_per_delivery(env):
    store, metrics, _, dispatcher = env
    out = io.StringIO()
    asset = make_asset(people=(PersonRef("p1", "Alice"),))
    store.enqueue([("kids", "stdout", asset)], T0)
    dispatcher.configure(
        {"stdout": ConsoleSink("https://photos.example", out)}, lambda _r: RuleOptions()
    )
    assert await dispatcher.drain() == 1
    line = json.loads(out.getvalue())
    assert line["rule"] == "kids" and line["target"] == "stdout"
    assert line["asset_id"] == asset.id and line["people"] == ["Alice"]
    assert asset.taken_at is not None
    assert line["taken_at"] == asset.taken_at.isoformat()
    assert line["link"] == f"https://photos.example/photos/{asset.id}"
    assert store.counts().sent == 1
    assert (
        sample(metrics, "immich_sidecar_notifications_sent_total", rule="kids", target="stdout")
        == 1
    )


async def test_batches_are_grouped_per_target_and_rule(env):
    store, _, _, dispatcher = env
    a, b = FlakySink(), FlakySink()
    store.enqueue(
        [("kids", "a", make_asset()) for _ in range(3)]
        + [("pets", "a", make_asset()), ("kids", "b", make_asset())],
        T0,
    )
    dispatcher.configure({"a": a, "b": b}, lambda r: RuleOptions(mention_roles=(7,)))
    await dispatcher.drain()
    assert sorted((x.rule, len(x.deliveries)) for x in a.accepted) == [("kids", 3), ("pets", 1)]
    assert [(x.rule, x.mention_roles) for x in b.accepted] == [("kids", (7,))]


async def test_temporary_failure_is_retried_later_and_then_sent(env):
    store, metrics, clock, dispatcher = env
    sink = FlakySink([TemporaryDeliveryError("discord_unavailable", retry_after=30)])
    store.enqueue([("kids", "a", make_asset())], T0)
    dispatcher.configure({"a": sink}, lambda r: RuleOptions())
    assert await dispatcher.drain() == 0
    assert store.counts().pending == 1
    assert await dispatcher.drain() == 0  # not due yet: Discord asked for 30 s
    clock.now += timedelta(seconds=30)
    assert await dispatcher.drain() == 1
    assert store.counts().sent == 1
    assert (
        sample(
            metrics,
            "immich_sidecar_notification_failures_total",
            target="a",
            reason="discord_unavailable",
        )
        == 1
    )


async def test_permanent_failure_is_a_dead_letter_and_does_not_block_other_targets(env, caplog):
    store, metrics, _, dispatcher = env
    broken = FlakySink(
        [
            PermanentDeliveryError("missing_permission", "give the bot Attach Files")
            for _ in range(2)
        ]
    )
    ok = FlakySink()
    store.enqueue([("kids", "broken", make_asset()), ("kids", "ok", make_asset())], T0)
    dispatcher.configure({"broken": broken, "ok": ok}, lambda r: RuleOptions())
    await dispatcher.drain()
    assert len(ok.accepted) == 1
    counts = store.counts()
    assert (counts.sent, counts.failed, counts.pending) == (1, 1, 0)
    failed = [r for r in store.rows() if r.state == "failed"]
    assert "Attach Files" in (failed[0].last_error or "")
    assert sample(metrics, "immich_sidecar_outbox_dead") == 1
    store.enqueue([("kids", "broken", make_asset())], T0)
    await dispatcher.drain()
    # The fix is the same for every delivery: said once.
    assert sum("Attach Files" in r.getMessage() for r in caplog.records) == 1


async def test_deliveries_for_a_missing_sink_become_dead_letters(env):
    store, _, _, dispatcher = env
    store.enqueue([("kids", "gone", make_asset())], T0)
    dispatcher.configure({}, lambda r: RuleOptions())
    await dispatcher.drain()
    assert store.counts().failed == 1


async def test_gives_up_after_max_attempts(env):
    store, _, clock, dispatcher = env
    sink = FlakySink([TemporaryDeliveryError("down") for _ in range(MAX_ATTEMPTS)])
    store.enqueue([("kids", "a", make_asset())], T0)
    dispatcher.configure({"a": sink}, lambda r: RuleOptions())
    for _ in range(MAX_ATTEMPTS):
        await dispatcher.drain()
        clock.now += timedelta(hours=1)
    assert store.counts().failed == 1
    assert "gave_up" in (store.rows()[0].last_error or "")


async def test_a_sink_bug_keeps_the_delivery_for_a_retry(env):
    store, _, _, dispatcher = env
    store.enqueue([("kids", "a", make_asset())], T0)
    dispatcher.configure({"a": FlakySink([RuntimeError("bug")])}, lambda r: RuleOptions())
    await dispatcher.drain()
    assert store.counts().pending == 1


def test_retry_delay_grows_is_capped_and_honours_retry_after():
    assert 12 <= retry_delay(0) <= 18
    assert retry_delay(3) > retry_delay(0)
    assert retry_delay(50) <= 15 * 60 * 1.2
    assert retry_delay(0, retry_after=2.5) == 2.5
    assert retry_delay(0, retry_after=10_000) == 15 * 60


async def test_a_retried_batch_keeps_its_members_when_new_deliveries_arrive(env):
    store, _, clock, dispatcher = env
    sink = FlakySink([TemporaryDeliveryError("discord_unavailable", retry_after=5)])
    store.enqueue([("kids", "a", make_asset()) for _ in range(3)], T0)
    dispatcher.configure({"a": sink}, lambda r: RuleOptions())
    await dispatcher.drain()  # fails: the batch of three is now fixed
    store.enqueue([("kids", "a", make_asset())], T0)
    clock.now += timedelta(seconds=5)
    await dispatcher.drain()
    first, second = sink.accepted
    assert len(first.deliveries) == 3 and len(second.deliveries) == 1
    assert first.key != second.key
    # The key stored before the failed attempt: the retry carries the same one.
    assert {d.batch_key for d in first.deliveries} == {first.key}
    assert uuid.UUID(first.key).version == 4


async def test_two_state_files_never_give_the_same_batch_key(tmp_path):
    """Two sidecars (or one before and after a state reset) number their outbox rows alike; a
    receiver de-duplicating on the batch key must still see two different batches."""
    keys = []
    for name in ("one", "two"):
        store = Store.open(tmp_path / f"{name}.db")
        sink = FlakySink()
        dispatcher = Dispatcher(store, Metrics(), Clock())
        store.enqueue([("kids", "a", make_asset())], T0)
        dispatcher.configure({"a": sink}, lambda r: RuleOptions())
        await dispatcher.drain()
        store.close()
        [batch] = sink.accepted
        assert [d.id for d in batch.deliveries] == [1]  # the same row id in both files
        keys.append(batch.key)
    assert keys[0] != keys[1]


def test_due_returns_a_formed_batch_whole_even_past_the_limit(env):
    store, _, _, _ = env
    store.enqueue([("kids", "a", make_asset()) for _ in range(5)], T0)
    ids = [d.id for d in store.due(T0)]
    store.assign_batch(ids, "b1")
    assert [d.id for d in store.due(T0, limit=2)] == ids


async def test_messages_accepted_before_a_failure_are_not_sent_again(env):
    store, metrics, clock, dispatcher = env

    class SecondMessageFails(FlakySink):
        async def send(self, batch):
            if not self.accepted and len(batch.deliveries) > 2:
                error = TemporaryDeliveryError("connection", retry_after=1)
                error.sent_ids = tuple(d.id for d in batch.deliveries[:2])  # message 1 went out
                self.accepted.append(batch)
                raise error
            self.accepted.append(batch)

    sink = SecondMessageFails()
    store.enqueue([("kids", "a", make_asset()) for _ in range(5)], T0)
    dispatcher.configure({"a": sink}, lambda r: RuleOptions())
    assert await dispatcher.drain() == 2
    clock.now += timedelta(seconds=1)
    assert await dispatcher.drain() == 3
    first, retry = sink.accepted
    assert [d.id for d in retry.deliveries] == [d.id for d in first.deliveries[2:]]
    assert retry.key == first.key  # still the same batch
    assert store.counts().sent == 5
    assert sample(metrics, "immich_sidecar_notifications_sent_total", rule="kids", target="a") == 5
