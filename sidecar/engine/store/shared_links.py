"""The shared links of the state file: the Immich shared link each message was given, written
before the message is sent, so that a retry or a restart reuses it (never a second link for
one message); links past their expiry are pruned."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class StoredLink:
    link_id: str
    key: str
    expires_at: datetime | None


class SharedLinkTables:
    """The ``shared_link`` table of ``Store`` (which provides the connection)."""

    _db: sqlite3.Connection

    def shared_link(self, target: str, message: str, now: datetime) -> StoredLink | None:
        """The link made for this message, if any and not expired yet."""
        row = self._db.execute(
            "SELECT link_id, key, expires_at FROM shared_link WHERE target = ? AND message = ? "
            "AND (expires_at IS NULL OR expires_at > ?)",
            (target, message, now.timestamp()),
        ).fetchone()
        if row is None:
            return None
        expires = datetime.fromtimestamp(row[2], now.tzinfo) if row[2] is not None else None
        return StoredLink(str(row[0]), str(row[1]), expires)

    def keep_shared_link(
        self,
        target: str,
        message: str,
        link: StoredLink,
        now: datetime,
    ) -> None:
        """Remember the link made for this message (before the message is sent)."""
        self._db.execute(
            "INSERT OR REPLACE INTO shared_link "
            "(target, message, link_id, key, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                target,
                message,
                link.link_id,
                link.key,
                now.timestamp(),
                link.expires_at.timestamp() if link.expires_at is not None else None,
            ),
        )

    def prune_shared_links(self, now: datetime) -> int:
        """Forget links that have expired (Immich no longer opens them); how many."""
        cursor = self._db.execute(
            "DELETE FROM shared_link WHERE expires_at IS NOT NULL AND expires_at <= ?",
            (now.timestamp(),),
        )
        return cursor.rowcount

    def shared_link_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM shared_link").fetchone()[0])
