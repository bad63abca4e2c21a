"""The outbox: one row per (rule, target, asset), unique, so an asset is never queued twice
for the same place however often a poll sees it. A row is ``pending`` until a sink accepts it
(``sent``) or it fails for good (``failed``, a dead letter with its reason); quiet hours hold it,
a batch fixes its members before the first send.

The match log is written beside it, in the same transaction as the rows it records (once per
rule and asset, whatever the targets: what a digest summarises), and pruned with the sent rows.

The shared link each message of a target with ``links: shared`` was given (``SharedLinkTables``)
is kept here too, before the message is sent, so that a retry or a restart reuses it (never a
second link for one message); links past their expiry are pruned.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sidecar.engine.store.schema import asset_from_json, asset_json, post_from_json
from sidecar.immich.models import Asset
from sidecar.targets.base import AlbumRef, Delivery, SentMessages

_DELIVERY_COLUMNS = (
    "id, rule, target, asset_json, attempts, batch_key, album_id, album_name, post_json, held"
)

MATCH_LOG_DAYS = 62  # how far back a digest can look


@dataclass(frozen=True)
class OutboxRow:
    """One outbox row as tests and the status command see it."""

    id: int
    rule: str
    target: str
    asset_id: str
    state: str
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class OutboxCounts:
    pending: int
    sent: int
    failed: int


class OutboxTables:
    """The outbox and match log of ``Store`` (which provides the connection and the
    transactions)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def enqueue(
        self,
        deliveries: Iterable[tuple[str, str, Asset]],
        now: datetime,
        album: AlbumRef | None = None,
    ) -> int:
        """Queue (rule, target, asset) deliveries; ones already queued or sent are ignored.
        ``album``: the album the assets were added to (album rules). Returns how many rows
        were new."""
        stamp = now.timestamp()
        album_id, album_name = (album.id, album.name) if album is not None else (None, None)
        rows = [
            # An album delivery is kept like an upload of now: the asset itself may be old.
            (
                rule,
                target,
                asset.id,
                stamp if album is not None else asset.created_at.timestamp(),
                asset_json(asset),
                stamp,
                stamp,
                album_id,
                album_name,
            )
            for rule, target, asset in deliveries
        ]
        if not rows:
            return 0
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO outbox (rule, target, asset_id, asset_created_at, "
                "asset_json, next_attempt_at, queued_at, album_id, album_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            new = db.total_changes - before
            # Once per (rule, asset), whatever the targets: what a digest summarises.
            db.executemany(
                "INSERT OR IGNORE INTO match_log (rule, asset_id, matched_at, asset_json) "
                "VALUES (?, ?, ?, ?)",
                [(row[0], row[2], stamp, row[4]) for row in rows],
            )
            return new

    def due(self, now: datetime, limit: int = 1000) -> list[Delivery]:
        """Pending deliveries whose next attempt is due, oldest first; a batch formed earlier
        comes whole, even past ``limit``."""
        rows = self._db.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM outbox "  # noqa: S608 - a constant
            "WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (now.timestamp(), limit),
        ).fetchall()
        keys = sorted({row[5] for row in rows if row[5] is not None})
        if keys and len(rows) == limit:
            marks = ",".join("?" * len(keys))
            seen = {row[0] for row in rows}
            rows += [
                row
                for row in self._db.execute(
                    f"SELECT {_DELIVERY_COLUMNS} FROM outbox "  # noqa: S608 - placeholders
                    f"WHERE state = 'pending' AND batch_key IN ({marks}) ORDER BY id",
                    keys,
                )
                if row[0] not in seen
            ]
        return [
            Delivery(
                id=row_id,
                rule=rule,
                target=target,
                asset=asset_from_json(blob),
                attempts=attempts,
                batch_key=key,
                album=AlbumRef(album_id, album_name or "") if album_id else None,
                post=post_from_json(post_blob) if post_blob else None,
                held=bool(held),
            )
            for (
                row_id,
                rule,
                target,
                blob,
                attempts,
                key,
                album_id,
                album_name,
                post_blob,
                held,
            ) in rows
        ]

    def assign_batch(self, ids: Sequence[int], key: str) -> None:
        """Fix the membership of a batch before it is first sent."""
        self._update(ids, "batch_key = ?", (key,))

    def hold(self, ids: Sequence[int], until: datetime) -> None:
        """Quiet hours: these deliveries wait until ``until`` (kept across a restart)."""
        self._update(ids, "held = 1, next_attempt_at = ?", (until.timestamp(),))

    def next_due_at(self) -> datetime | None:
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'"
        ).fetchone()
        return None if row[0] is None else datetime.fromtimestamp(row[0], UTC)

    def mark_sent(
        self, ids: Sequence[int], now: datetime, messages: SentMessages | None = None
    ) -> None:
        """Sent: with the Discord message that carried each delivery, where the sink knew it."""
        if not ids:
            return
        refs = messages or {}
        rows = []
        for row_id in ids:
            ref = refs.get(row_id)
            message = (ref.guild_id, ref.channel_id, ref.message_id) if ref else (None,) * 3
            rows.append((now.timestamp(), *message, row_id))
        with self._transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = 'sent', finished_at = ?, last_error = NULL, "
                "message_guild = ?, message_channel = ?, message_id = ? WHERE id = ?",
                rows,
            )

    def mark_retry(self, ids: Sequence[int], reason: str, next_attempt_at: datetime) -> None:
        self._update(
            ids,
            "attempts = attempts + 1, last_error = ?, next_attempt_at = ?",
            (reason, next_attempt_at.timestamp()),
        )

    def mark_failed(self, ids: Sequence[int], reason: str, now: datetime) -> None:
        self._update(
            ids,
            "state = 'failed', attempts = attempts + 1, last_error = ?, finished_at = ?",
            (reason, now.timestamp()),
        )

    def fail_pending_for_targets(self, targets: Iterable[str], reason: str, now: datetime) -> int:
        """Dead-letter the pending deliveries of targets that no longer exist."""
        names = list(targets)
        if not names:
            return 0
        marks = ",".join("?" * len(names))
        with self._transaction() as db:
            cursor = db.execute(
                f"UPDATE outbox SET state = 'failed', last_error = ?, finished_at = ? "  # noqa: S608
                f"WHERE state = 'pending' AND target IN ({marks})",
                (reason, now.timestamp(), *names),
            )
            return cursor.rowcount

    def counts(self) -> OutboxCounts:
        totals = dict(self._db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
        return OutboxCounts(
            pending=totals.get("pending", 0),
            sent=totals.get("sent", 0),
            failed=totals.get("failed", 0),
        )

    def delivery_states(
        self, keys: Iterable[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], str]:
        """The state (pending, sent or failed) of each (rule, target, asset id) that has an
        outbox row; reads only (the dry run asks)."""
        wanted = set(keys)
        assets = sorted({asset_id for _rule, _target, asset_id in wanted})
        found: dict[tuple[str, str, str], str] = {}
        for start in range(0, len(assets), 500):
            chunk = assets[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for rule, target, asset_id, state in self._db.execute(
                "SELECT rule, target, asset_id, state FROM outbox "  # noqa: S608 - placeholders
                f"WHERE asset_id IN ({marks})",
                chunk,
            ):
                if (rule, target, asset_id) in wanted:
                    found[(rule, target, asset_id)] = state
        return found

    def rows(self) -> list[OutboxRow]:
        """Every outbox row, oldest first (for the status command and tests)."""
        return [
            OutboxRow(*row)
            for row in self._db.execute(
                "SELECT id, rule, target, asset_id, state, attempts, last_error "
                "FROM outbox ORDER BY id"
            )
        ]

    def forget_sent_before(self, asset_created_before: datetime) -> int:
        """Drop sent rows of assets too old to be seen by a poll again (keeps the file small).
        Dead letters stay for the user to inspect."""
        cursor = self._db.execute(
            "DELETE FROM outbox WHERE state = 'sent' AND asset_created_at < ?",
            (asset_created_before.timestamp(),),
        )
        # The digests' log of matches is kept longer (a monthly digest), not for ever.
        self.forget_matches_before(asset_created_before - timedelta(days=MATCH_LOG_DAYS))
        return cursor.rowcount

    def _update(self, ids: Sequence[int], assignments: str, values: tuple[Any, ...]) -> None:
        if not ids:
            return
        with self._transaction() as db:
            db.executemany(
                f"UPDATE outbox SET {assignments} WHERE id = ?",  # noqa: S608 - fixed fragments
                [(*values, row_id) for row_id in ids],
            )

    # -- the match log -------------------------------------------------------------------------

    def matches_between(
        self,
        rules: Iterable[str],
        start: datetime,
        end: datetime,
    ) -> dict[str, list[Asset]]:
        """What each rule matched in [start, end), oldest first (for digests)."""
        names = list(rules)
        found: dict[str, list[Asset]] = {name: [] for name in names}
        if not names:
            return found
        marks = ",".join("?" * len(names))
        for rule, blob in self._db.execute(
            f"SELECT rule, asset_json FROM match_log WHERE rule IN ({marks}) "  # noqa: S608
            "AND matched_at >= ? AND matched_at < ? ORDER BY matched_at, asset_id",
            (*names, start.timestamp(), end.timestamp()),
        ):
            found[rule].append(asset_from_json(blob))
        return found

    def forget_matches_before(self, moment: datetime) -> int:
        return self._db.execute(
            "DELETE FROM match_log WHERE matched_at < ?", (moment.timestamp(),)
        ).rowcount


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
