"""The state file's rule holds: where an account's cursors stood when a rule stopped running
because a feature it needs is off (a permission the key lacks), kept until it runs again
(``engine.uploads.holds``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class RuleHold:
    """A rule that did not run from ``held_at`` on: assets created from ``stream_from`` and the
    people seen by polls from ``people_from`` on are still to be decided for it."""

    rule: str
    stream_from: datetime
    people_from: datetime
    held_at: datetime


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


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
            rule: RuleHold(rule, _time(stream), _time(people), _time(held))
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
