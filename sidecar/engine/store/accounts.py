"""Each Immich account's part of the state file: its cursors and baseline (``account_meta``).

The outbox, the rule baselines and the post runs stay shared: an asset reached through two
accounts has one outbox key, so it is delivered once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sidecar.engine.store.database import Store

LEGACY_ACCOUNT = ""  # the state of a sidecar from before accounts (one api_key)
ACCOUNT_BASELINE_KEY = "baseline"  # sidecar.engine.uploads.poller.BASELINE_KEY, kept per account


def stored_accounts(store: Store) -> list[str]:
    """The accounts that have state in the file, legacy included."""
    rows = store.connection.execute("SELECT DISTINCT account FROM account_meta ORDER BY account")
    return [str(name) for (name,) in rows]


def adopt_account(store: Store, old: str, new: str) -> bool:
    """Give ``old``'s state to ``new`` when ``new`` has none yet (an upgrade from one key keeps
    its cursors). True when it did."""
    db = store.connection
    db.execute("BEGIN IMMEDIATE")
    try:
        taken = db.execute("SELECT 1 FROM account_meta WHERE account = ?", (new,)).fetchone()
        moved = 0
        if taken is None:
            moved = db.execute(
                "UPDATE account_meta SET account = ? WHERE account = ?", (new, old)
            ).rowcount
            db.execute("UPDATE unread_window SET account = ? WHERE account = ?", (new, old))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return moved > 0


def drop_account(store: Store, name: str) -> int:
    """Forget an account's cursors and unread windows (it left the config)."""
    db = store.connection
    db.execute(
        "DELETE FROM unread_seen WHERE window_id IN "
        "(SELECT id FROM unread_window WHERE account = ?)",
        (name,),
    )
    db.execute("DELETE FROM unread_window WHERE account = ?", (name,))
    return db.execute("DELETE FROM account_meta WHERE account = ?", (name,)).rowcount


class AccountStore(Store):
    """The state file as one account's poll sees it: its own cursors and baseline, the shared
    outbox. The poll of all accounts forgets old sent rows once, for the slowest account."""

    def __init__(self, store: Store, account: str) -> None:
        super().__init__(store.connection, store.path)
        self.account = account  # also scopes the unread windows (store_unread.UnreadTables)

    def close(self) -> None:  # the shared connection belongs to the store it views
        pass

    def get_meta(self, key: str) -> str | None:
        row = self.connection.execute(
            "SELECT value FROM account_meta WHERE account = ? AND key = ?", (self.account, key)
        ).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.connection.execute(
            "INSERT INTO account_meta (account, key, value) VALUES (?, ?, ?) "
            "ON CONFLICT (account, key) DO UPDATE SET value = excluded.value",
            (self.account, key, value),
        )

    def rule_baselines(self, rules: Iterable[str], since_if_new: datetime) -> dict[str, datetime]:
        """The rules' baselines, none earlier than this account's own: an account added later
        starts from then, not from when the rule was first seen."""
        return self._from_own_start(super().rule_baselines(rules, since_if_new))

    def stored_baselines(self) -> dict[str, datetime]:
        return self._from_own_start(super().stored_baselines())

    def _from_own_start(self, found: dict[str, datetime]) -> dict[str, datetime]:
        own = self.get_meta(ACCOUNT_BASELINE_KEY)
        if own is None:
            return found
        start = datetime.fromtimestamp(float(own), UTC)
        return {rule: max(since, start) for rule, since in found.items()}

    def forget_sent_before(self, asset_created_before: datetime) -> int:
        return 0


__all__ = ["AccountStore", "adopt_account", "drop_account", "stored_accounts"]
