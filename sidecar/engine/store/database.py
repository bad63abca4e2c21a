"""The sidecar's durable state in one SQLite file: the outbox, rule baselines and poll bookkeeping.

The outbox holds one row per (rule, target, asset), unique, so an asset is never queued twice
for the same place however often a poll sees it. A row is ``pending`` until a sink accepts it
(``sent``) or it fails for good (``failed``, a dead letter with its reason).

SQLite calls are short (indexed single-table statements in one transaction), so they run on the
event loop thread; the connection is used from that thread only.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sidecar.engine.store.albums import AlbumState, AlbumTables
from sidecar.engine.store.ingest import IngestTables
from sidecar.engine.store.members import MemberTables
from sidecar.engine.store.schema import (
    MIGRATIONS,
    StoreError,
    asset_from_json,
    asset_json,
    migrate,
    post_from_json,
    post_json,
)
from sidecar.engine.store.unread import UnreadTables
from sidecar.immich.models import Asset, PersonRef
from sidecar.targets.base import AlbumRef, Delivery, PostRef

_DELIVERY_COLUMNS = (
    "id, rule, target, asset_json, attempts, batch_key, album_id, album_name, post_json, held"
)


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


MATCH_LOG_DAYS = 62  # how far back a digest can look

WRITABLE_HINT = "set state.path to a writable file"


class Store(AlbumTables, IngestTables, MemberTables, UnreadTables):
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) the state file and bring its schema up to date."""
        if str(path) != ":memory:":
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                folder = err.filename or path.parent
                why = (
                    "a file of that name is in the way"
                    if isinstance(err, FileExistsError)
                    else (err.strerror or type(err).__name__).lower()
                )
                raise StoreError(
                    f"state.path {path}: cannot create {folder} ({why}); {WRITABLE_HINT}"
                ) from None
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            migrate(db)
        except sqlite3.Error as err:
            raise StoreError(
                f"state.path {path}: cannot open the state database ({err}); {WRITABLE_HINT}"
            ) from None
        return cls(db, path)

    @classmethod
    def open_for_reading(cls, path: Path) -> Store:
        """The state file opened read-only (dry-run); an in-memory empty one when the file does
        not exist or predates album state. Nothing is ever written to the file."""
        if str(path) != ":memory:" and path.is_file():
            try:
                db = sqlite3.connect(
                    f"{path.absolute().as_uri()}?mode=ro", uri=True, isolation_level=None
                )
                if db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
                    return cls(db, path)
                db.close()
            except sqlite3.Error as err:
                raise StoreError(f"{path}: cannot read the state database: {err}") from None
        return cls.open(Path(":memory:"))

    def close(self) -> None:
        self._db.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The open database (account views of the store share it)."""
        return self._db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- bookkeeping ---------------------------------------------------------------------------

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

    # -- outbox --------------------------------------------------------------------------------

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

    # -- scheduled posts ------------------------------------------------------------------------

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

    def mark_sent(self, ids: Sequence[int], now: datetime) -> None:
        self._update(ids, "state = 'sent', finished_at = ?, last_error = NULL", (now.timestamp(),))

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

    # -- albums --------------------------------------------------------------------------------

    def _update(self, ids: Sequence[int], assignments: str, values: tuple[Any, ...]) -> None:
        if not ids:
            return
        with self._transaction() as db:
            db.executemany(
                f"UPDATE outbox SET {assignments} WHERE id = ?",  # noqa: S608 - fixed fragments
                [(*values, row_id) for row_id in ids],
            )


__all__ = ["AlbumState", "OutboxCounts", "OutboxRow", "PersonRef", "Store", "StoreError"]
