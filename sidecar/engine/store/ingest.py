"""The drag-and-drop ingest's part of the state file: which channel messages were handled (so a
message is never uploaded twice, also across restarts), where each channel's history was read
up to, and which assets came in through which channel (so they are not announced back there)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime


class IngestTables:
    """The ingest tables of ``Store`` (which provides the connection and the transactions).

    A message is claimed (``done = 0``) before its first upload and marked done after the last
    one, in one transaction with the assets it brought. A claim still open at the next start
    means the process died in between: the message is handled again, and Immich, which
    recognises a file it already has by its checksum, answers "duplicate" for what had arrived.
    """

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def ingest_claim(self, channel_id: int, message_id: int, now: datetime) -> bool:
        """Claim a message for handling; False when it was handled before."""
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO ingest_message (channel_id, message_id, done, started_at) "
                "VALUES (?, ?, 0, ?)",
                (channel_id, message_id, now.timestamp()),
            )
            row = db.execute(
                "SELECT done FROM ingest_message WHERE channel_id = ? AND message_id = ?",
                (channel_id, message_id),
            ).fetchone()
        return not row[0]

    def ingest_remember_asset(self, asset_id: str, channel_id: int, message_id: int) -> None:
        """An asset that came in through a channel (kept at once, before the message is done,
        so that a poll seeing it meanwhile does not announce it back there)."""
        self._db.execute(
            "INSERT OR IGNORE INTO ingest_asset (asset_id, channel_id, message_id) "
            "VALUES (?, ?, ?)",
            (asset_id, channel_id, message_id),
        )

    def ingest_done(self, channel_id: int, message_id: int, asset_ids: Sequence[str]) -> None:
        """The message is handled for good; its channel's history is read up to it."""
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO ingest_asset (asset_id, channel_id, message_id) "
                "VALUES (?, ?, ?)",
                [(a, channel_id, message_id) for a in asset_ids],
            )
            db.execute(
                "UPDATE ingest_message SET done = 1 WHERE channel_id = ? AND message_id = ?",
                (channel_id, message_id),
            )
            self._advance(db, channel_id, message_id)

    def ingest_seen(self, channel_id: int, message_id: int) -> None:
        """A message with nothing to upload: only the history cursor moves."""
        with self._transaction() as db:
            self._advance(db, channel_id, message_id)

    def ingest_start_at(self, channel_id: int, message_id: int) -> None:
        """Where a channel's history starts when the sidecar first watches it."""
        self._db.execute(
            "INSERT OR IGNORE INTO ingest_cursor (channel_id, message_id) VALUES (?, ?)",
            (channel_id, message_id),
        )

    def ingest_resume_after(self, channel_id: int) -> int | None:
        """The message id to read the channel's history after: just before the oldest message
        left unfinished, else the last one handled; None for a channel never watched."""
        unfinished = self._db.execute(
            "SELECT MIN(message_id) FROM ingest_message WHERE channel_id = ? AND done = 0",
            (channel_id,),
        ).fetchone()[0]
        if unfinished is not None:
            return int(unfinished) - 1
        row = self._db.execute(
            "SELECT message_id FROM ingest_cursor WHERE channel_id = ?", (channel_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def ingest_is_done(self, channel_id: int, message_id: int) -> bool:
        row = self._db.execute(
            "SELECT done FROM ingest_message WHERE channel_id = ? AND message_id = ?",
            (channel_id, message_id),
        ).fetchone()
        return bool(row and row[0])

    def ingested_from(self, asset_id: str) -> int | None:
        """The channel an asset came in through, if it came through one."""
        row = self._db.execute(
            "SELECT channel_id FROM ingest_asset WHERE asset_id = ?", (asset_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def ingested_with(self, asset_id: str, channel_id: int, message_id: int) -> bool:
        """Whether this message brought this asset (a handling cut short by a crash)."""
        row = self._db.execute(
            "SELECT 1 FROM ingest_asset WHERE asset_id = ? AND channel_id = ? AND message_id = ?",
            (asset_id, channel_id, message_id),
        ).fetchone()
        return row is not None

    @staticmethod
    def _advance(db: sqlite3.Connection, channel_id: int, message_id: int) -> None:
        db.execute(
            "INSERT INTO ingest_cursor (channel_id, message_id) VALUES (?, ?) "
            "ON CONFLICT (channel_id) DO UPDATE SET message_id = "
            "MAX(message_id, excluded.message_id)",
            (channel_id, message_id),
        )
