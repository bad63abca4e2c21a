"""The scheduled posts' part of the state file: one row per (post, occasion) run, with the
pictures it showed, keyed in the same transaction as the outbox rows it queues, so a restart,
a reload or a second fire never posts twice."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sidecar.engine.store.schema import asset_json, post_json
from sidecar.immich.models import Asset
from sidecar.targets.base import PostRef


class PostRunTables:
    """The post-run table of ``Store`` (which provides the connection and the transactions)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def post_ran(self, post: str, occasion: str) -> bool:
        """Whether this post already ran for this occasion."""
        return (
            self._db.execute(
                "SELECT 1 FROM post_run WHERE post = ? AND occasion = ?", (post, occasion)
            ).fetchone()
            is not None
        )

    def last_post_run(self, post: str) -> datetime | None:
        row = self._db.execute(
            "SELECT MAX(ran_at) FROM post_run WHERE post = ?", (post,)
        ).fetchone()
        return None if row[0] is None else datetime.fromtimestamp(row[0], UTC)

    def record_post(
        self,
        post: str,
        occasion: str,
        deliveries: Sequence[tuple[str, Asset, PostRef]],
        now: datetime,
    ) -> bool:
        """Queue a post run's (target, asset, message) deliveries and key the run, in one
        transaction. False (and nothing queued) when the run was recorded before."""
        stamp = now.timestamp()
        with self._transaction() as db:
            pictures = sorted({f"{ref.group}/{asset.id}" for _, asset, ref in deliveries})
            cursor = db.execute(
                "INSERT OR IGNORE INTO post_run (post, occasion, ran_at, sent, pictures) "
                "VALUES (?, ?, ?, ?, ?)",
                (post, occasion, stamp, len(pictures), json.dumps(pictures)),
            )
            if cursor.rowcount == 0:
                return False
            db.executemany(
                "INSERT OR IGNORE INTO outbox (rule, target, asset_id, asset_created_at, "
                "asset_json, next_attempt_at, queued_at, post_json) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        post,
                        target,
                        f"{ref.occasion}/{ref.group}/{asset.id}",
                        stamp,
                        asset_json(asset),
                        stamp,
                        stamp,
                        post_json(ref),
                    )
                    for target, asset, ref in deliveries
                ],
            )
        return True

    def posted_pictures(self, post: str, since: datetime) -> set[str]:
        """``group/asset id`` of the pictures this post showed since ``since`` (so that a
        birthday does not show the same photo as last year)."""
        rows = self._db.execute(
            "SELECT pictures FROM post_run WHERE post = ? AND ran_at >= ?",
            (post, since.timestamp()),
        )
        return {str(p) for (blob,) in rows for p in json.loads(blob)}
