"""The state file's unread windows: spans of upload time whose assets Immich had not all read
when the poll passed them, and the assets of each already decided (``engine.stream``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class UnreadWindow:
    """Assets created in [created_after, created_before] that were not all readable yet.
    ``changed_since``: the next look asks only for assets changed since then; ``seen``: how
    many of the window's assets were decided."""

    id: int
    created_after: datetime
    created_before: datetime
    changed_since: datetime
    opened_at: datetime
    seen: int
    kind: str = "settled"  # "eager": the rules without people and without `none:`


def _time(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


class UnreadTables:
    """The unread-window tables of ``Store`` (which provides the connection and transactions)."""

    _db: sqlite3.Connection
    # Whose windows these are: each Immich account's poll keeps its own (engine.store_accounts;
    # "" is a single-key sidecar's, taken over by the first account). None: not scoped, every
    # window (a store used by one poller alone, as before accounts).
    account: str | None = None

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def unread_windows(self) -> list[UnreadWindow]:
        """The open windows, oldest first."""
        scope = "" if self.account is None else "WHERE w.account = ? "
        sql = (
            "SELECT w.id, w.created_after, w.created_before, w.changed_since, w.opened_at, "  # noqa: S608 - fixed fragments
            "(SELECT count(*) FROM unread_seen s WHERE s.window_id = w.id), w.kind "
            f"FROM unread_window w {scope}ORDER BY w.created_after, w.id"
        )
        values = () if self.account is None else (self.account,)
        return [
            UnreadWindow(
                row[0], _time(row[1]), _time(row[2]), _time(row[3]), _time(row[4]), row[5], row[6]
            )
            for row in self._db.execute(sql, values)
        ]

    def open_unread_window(
        self,
        created: tuple[datetime, datetime],
        changed_since: datetime,
        opened_at: datetime,
        seen: Iterable[str],
        kind: str = "settled",
    ) -> None:
        """Remember a window and the assets of it that were decided, in one transaction. An
        eager window that ends where this one starts grows instead (one per run of passes)."""
        with self._transaction() as db:
            window_id = self._grown(db, created, changed_since) if kind == "eager" else None
            if window_id is None:
                times = (
                    created[0].timestamp(),
                    created[1].timestamp(),
                    changed_since.timestamp(),
                    opened_at.timestamp(),
                )
                columns = "created_after, created_before, changed_since, opened_at, kind"
                sql = f"INSERT INTO unread_window (account, {columns}) VALUES (?, ?, ?, ?, ?, ?)"  # noqa: S608
                window_id = db.execute(sql, (self.account or "", *times, kind)).lastrowid
            db.executemany(
                "INSERT OR IGNORE INTO unread_seen (window_id, asset_id) VALUES (?, ?)",
                [(window_id, asset_id) for asset_id in seen],
            )

    def _grown(
        self, db: sqlite3.Connection, created: tuple[datetime, datetime], changed_since: datetime
    ) -> int | None:
        """The eager window that ends at ``created``'s start, grown to its end; None if none."""
        scope = "" if self.account is None else "AND account = ? "
        row = db.execute(
            "SELECT id FROM unread_window WHERE kind = 'eager' AND created_before = ? "  # noqa: S608 - fixed fragments
            f"{scope}ORDER BY id DESC LIMIT 1",
            (created[0].timestamp(), *(() if self.account is None else (self.account,))),
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE unread_window SET created_before = ?, "
            "changed_since = min(changed_since, ?) WHERE id = ?",
            (created[1].timestamp(), changed_since.timestamp(), row[0]),
        )
        return int(row[0])

    def unread_seen(self, window_id: int) -> set[str]:
        return {
            asset_id
            for (asset_id,) in self._db.execute(
                "SELECT asset_id FROM unread_seen WHERE window_id = ?", (window_id,)
            )
        }

    def update_unread_window(
        self, window_id: int, changed_since: datetime, seen: Iterable[str]
    ) -> None:
        """Record newly decided assets and where the next look starts."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO unread_seen (window_id, asset_id) VALUES (?, ?)",
                [(window_id, asset_id) for asset_id in seen],
            )
            db.execute(
                "UPDATE unread_window SET changed_since = ? WHERE id = ?",
                (changed_since.timestamp(), window_id),
            )

    def close_unread_window(self, window_id: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM unread_seen WHERE window_id = ?", (window_id,))
            db.execute("DELETE FROM unread_window WHERE id = ?", (window_id,))
