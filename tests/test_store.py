from __future__ import annotations

import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from sidecar.engine.store.database import Store
from sidecar.engine.store.schema import MIGRATIONS, StoreError
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
        ("kids", "family", asset.id),
        ("kids", "stdout", asset.id),
    ]


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


def test_an_unusable_state_path_is_one_line_naming_state_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    path = blocker / "data" / "state.db"
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == (
        f"state.path {path}: cannot create {blocker / 'data'} "
        "(not a directory); set state.path to a writable file"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_a_state_folder_without_write_permission_says_permission_denied(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    path = locked / "data" / "state.db"
    with pytest.raises(StoreError) as caught:
        Store.open(path)
    assert str(caught.value) == (
        f"state.path {path}: cannot create {locked / 'data'} "
        "(permission denied); set state.path to a writable file"
    )


def test_run_with_an_unusable_state_path_exits_2_with_that_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from sidecar.cli.main import main
    from tests.e2e_harness import write_config

    (tmp_path / "a-file").write_text("")
    config = tmp_path / "config.yaml"
    write_config(
        config,
        immich_url="http://127.0.0.1:9",
        state=tmp_path / "a-file" / "s.db",
        rules="- {name: all, targets: [stdout]}",
    )
    monkeypatch.setenv("IMMICH_API_KEY", "k")
    assert main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"immich-sidecar: state.path {tmp_path / 'a-file' / 's.db'}: cannot create "
        f"{tmp_path / 'a-file'} (a file of that name is in the way); "
        "set state.path to a writable file\n"
    )
