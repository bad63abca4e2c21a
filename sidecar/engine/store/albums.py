"""The watched albums' part of the state file: each album's counters and the members seen in
it, so a poll can tell an addition from an asset it saw before."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass


@dataclass(frozen=True)
class AlbumState:
    """A watched album at the last poll: its counters and members per month."""

    album_id: str
    name: str
    asset_count: int
    updated_at: str
    last_modified: str | None
    shared: bool
    buckets: dict[str, int]  # timeBucket -> count


class AlbumTables:
    """The album tables of ``Store`` (which provides the connection and the transactions)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    def album_states(self) -> dict[str, AlbumState]:
        """What every watched album looked like at the last poll that saw it."""
        return {
            row[0]: AlbumState(
                album_id=row[0],
                name=row[1],
                asset_count=row[2],
                updated_at=row[3],
                last_modified=row[4],
                shared=bool(row[5]),
                buckets=json.loads(row[6]),
            )
            for row in self._db.execute(
                "SELECT album_id, name, asset_count, updated_at, last_modified, shared, "
                "buckets_json FROM album_state"
            )
        }

    def save_album(self, state: AlbumState, new_members: Iterable[str] = ()) -> None:
        """Record an album's counters and the members seen in it, in one transaction (so a
        crash between the two cannot lose or repeat an addition)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO album_state (album_id, name, asset_count, updated_at, "
                "last_modified, shared, buckets_json) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (album_id) DO UPDATE SET name = excluded.name, "
                "asset_count = excluded.asset_count, updated_at = excluded.updated_at, "
                "last_modified = excluded.last_modified, shared = excluded.shared, "
                "buckets_json = excluded.buckets_json",
                (
                    state.album_id,
                    state.name,
                    state.asset_count,
                    state.updated_at,
                    state.last_modified,
                    int(state.shared),
                    json.dumps(state.buckets, separators=(",", ":"), sort_keys=True),
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO album_member (album_id, asset_id) VALUES (?, ?)",
                [(state.album_id, asset_id) for asset_id in new_members],
            )

    def known_album_members(self, album_id: str, asset_ids: Iterable[str]) -> set[str]:
        """Which of ``asset_ids`` were seen in the album before."""
        wanted = list(asset_ids)
        known: set[str] = set()
        for start in range(0, len(wanted), 500):  # SQLite's variable limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            known.update(
                asset_id
                for (asset_id,) in self._db.execute(
                    f"SELECT asset_id FROM album_member WHERE album_id = ? "  # noqa: S608
                    f"AND asset_id IN ({marks})",
                    (album_id, *chunk),
                )
            )
        return known

    def forget_albums_except(self, album_ids: Iterable[str]) -> int:
        """Drop the state of albums no rule watches any more: watching one again later starts
        from a new baseline. Returns how many albums were forgotten."""
        keep = list(album_ids)
        marks = ",".join("?" * len(keep)) or "NULL"
        with self._transaction() as db:
            gone = [
                album_id
                for (album_id,) in db.execute(
                    f"SELECT album_id FROM album_state WHERE album_id NOT IN ({marks})",  # noqa: S608
                    keep,
                )
            ]
            for album_id in gone:
                db.execute("DELETE FROM album_member WHERE album_id = ?", (album_id,))
                db.execute("DELETE FROM album_state WHERE album_id = ?", (album_id,))
        return len(gone)
