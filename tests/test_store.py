from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from sidecar.store import MIGRATIONS, Store, StoreError
from tests.factories import T0, make_asset


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "state" / "state.db")
    yield s
    s.close()


def test_same_rule_target_asset_is_queued_once(store):
    asset = make_asset()
    assert store.enqueue([("kids", "family", asset), ("kids", "stdout", asset)], T0) == 2
    assert store.enqueue([("kids", "family", asset)], T0 + timedelta(minutes=5)) == 0
    assert [(r.rule, r.target, r.asset_id) for r in store.rows()] == [
        ("kids", "family", asset.id), ("kids", "stdout", asset.id)]


def test_sent_rows_are_not_queued_again(store):
    asset = make_asset()
    store.enqueue([("kids", "family", asset)], T0)
    [delivery] = store.due(T0)
    store.mark_sent([delivery.id], T0)
    assert store.enqueue([("kids", "family", asset)], T0) == 0
    assert store.due(T0 + timedelta(days=1)) == []
    assert store.counts().sent == 1


def test_due_returns_the_asset_as_queued(store):
    asset = make_asset()
    store.enqueue([("kids", "family", asset)], T0)
    [delivery] = store.due(T0)
    assert delivery.asset == asset
    assert (delivery.rule, delivery.target, delivery.attempts) == ("kids", "family", 0)


def test_retry_waits_until_next_attempt_and_counts_attempts(store):
    store.enqueue([("kids", "family", make_asset())], T0)
    [delivery] = store.due(T0)
    store.mark_retry([delivery.id], "discord_unavailable", T0 + timedelta(seconds=30))
    assert store.due(T0 + timedelta(seconds=29)) == []
    [again] = store.due(T0 + timedelta(seconds=30))
    assert again.attempts == 1
    assert store.next_due_at() == T0 + timedelta(seconds=30)


def test_failed_rows_are_dead_letters_with_reason(store):
    store.enqueue([("kids", "family", make_asset())], T0)
    [delivery] = store.due(T0)
    store.mark_failed([delivery.id], "missing_permission: give the bot Send Messages", T0)
    [row] = store.rows()
    assert row.state == "failed"
    assert "Send Messages" in (row.last_error or "")
    assert store.due(T0 + timedelta(days=1)) == []
    assert store.counts().failed == 1


def test_state_survives_reopening(tmp_path):
    path = tmp_path / "state.db"
    first = Store.open(path)
    first.enqueue([("kids", "family", make_asset())], T0)
    first.set_time("baseline", T0)
    first.close()
    second = Store.open(path)
    assert len(second.due(T0)) == 1
    assert second.get_time("baseline") == T0
    second.close()


def test_rule_baseline_is_recorded_once(store):
    first = store.rule_baselines(["kids"], since_if_new=T0)
    later = store.rule_baselines(["kids", "videos"], since_if_new=T0 + timedelta(hours=1))
    assert first == {"kids": T0}
    assert later == {"kids": T0, "videos": T0 + timedelta(hours=1)}


def test_pending_deliveries_of_removed_targets_become_dead_letters(store):
    store.enqueue([("kids", "family", make_asset()), ("kids", "grandma", make_asset())], T0)
    assert store.fail_pending_for_targets(["grandma"], "target removed", T0) == 1
    assert [d.target for d in store.due(T0)] == ["family"]


def test_old_sent_rows_are_forgotten_but_dead_letters_kept(store):
    old, new = make_asset(created=T0 - timedelta(days=10)), make_asset(created=T0)
    dead = make_asset(created=T0 - timedelta(days=10))
    store.enqueue([("r", "t", old), ("r", "t", new), ("r", "t", dead)], T0)
    ids = {d.asset.id: d.id for d in store.due(T0)}
    store.mark_sent([ids[old.id], ids[new.id]], T0)
    store.mark_failed([ids[dead.id]], "gone", T0)
    assert store.forget_sent_before(T0 - timedelta(days=4)) == 1
    assert {r.asset_id for r in store.rows()} == {new.id, dead.id}


def test_uses_wal_and_records_schema_version(tmp_path):
    path = tmp_path / "state.db"
    Store.open(path).close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_newer_schema_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer than this sidecar"):
        Store.open(path)
