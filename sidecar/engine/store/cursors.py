"""The state file's bookkeeping: values kept by key (the polls' cursors and times, whose file
it is, when a post was first known: table ``meta``) and when each rule started watching
(``rule_baseline``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime

LAST_PUSH_KEY = "push_last_received"  # meta: when Immich last pushed (push.handler writes it)


class CursorTables:
    """The bookkeeping tables of ``Store`` (which provides the connection and the
    transactions); ``AccountStore`` keeps an account's keys apart."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def forget_meta(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    def get_time(self, key: str) -> datetime | None:
        value = self.get_meta(key)
        return None if value is None else datetime.fromtimestamp(float(value), UTC)

    def set_time(self, key: str, value: datetime) -> None:
        self.set_meta(key, repr(value.timestamp()))

    def rule_baselines(self, rules: Iterable[str], since_if_new: datetime) -> dict[str, datetime]:
        """When each rule started watching: recorded the first time a rule name is seen, so a
        rule added to the config later does not announce the whole look-back window."""
        names = list(rules)
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO rule_baseline (rule, since) VALUES (?, ?)",
                [(name, since_if_new.timestamp()) for name in names],
            )
            rows = db.execute("SELECT rule, since FROM rule_baseline").fetchall()
        wanted = set(names)
        return {rule: datetime.fromtimestamp(since, UTC) for rule, since in rows if rule in wanted}

    def stored_baselines(self) -> dict[str, datetime]:
        """Every rule's baseline as recorded (read only: no new rule is recorded)."""
        rows = self._db.execute("SELECT rule, since FROM rule_baseline").fetchall()
        return {rule: datetime.fromtimestamp(since, UTC) for rule, since in rows}
