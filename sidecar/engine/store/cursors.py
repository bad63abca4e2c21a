"""The state file's bookkeeping: values kept by key (the polls' cursors and times, whose file
it is, when a post was first known: table ``meta``), when each rule started watching
(``rule_baseline``), and the rule holds (``rule_hold``): where an account's cursors stood when a
rule stopped running because a feature it needs is off, kept until it runs again
(``engine.uploads.holds``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RuleHold:
    """A rule that did not run from ``held_at`` on: assets created from ``stream_from`` and the
    people seen by polls from ``people_from`` on are still to be decided for it."""

    rule: str
    stream_from: datetime
    people_from: datetime
    held_at: datetime


class HoldTables:
    """The rule holds of ``Store``, scoped to its account (``account``, set by
    ``AccountStore``; a store used by one poller alone keeps the single-key account's)."""

    _db: sqlite3.Connection
    account: str | None = None

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def rule_holds(self) -> dict[str, RuleHold]:
        rows = self._db.execute(
            "SELECT rule, stream_from, people_from, held_at FROM rule_hold WHERE account = ?",
            (self.account or "",),
        )
        return {
            rule: RuleHold(rule, *(datetime.fromtimestamp(t, UTC) for t in (stream, people, held)))
            for rule, stream, people, held in rows
        }

    def hold_rules(
        self, rules: Iterable[str], stream_from: datetime, people_from: datetime, now: datetime
    ) -> None:
        """Hold these rules where the cursors stand (a rule held already keeps its place)."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO rule_hold (account, rule, stream_from, people_from, "
                "held_at) VALUES (?, ?, ?, ?, ?)",
                [
                    (
                        self.account or "",
                        rule,
                        stream_from.timestamp(),
                        people_from.timestamp(),
                        now.timestamp(),
                    )
                    for rule in rules
                ],
            )

    def release_holds(self, rules: Iterable[str]) -> None:
        with self._transaction() as db:
            db.executemany(
                "DELETE FROM rule_hold WHERE account = ? AND rule = ?",
                [(self.account or "", rule) for rule in rules],
            )
