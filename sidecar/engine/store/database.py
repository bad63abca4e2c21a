"""The sidecar's durable state in one SQLite file: opening it (created and migrated, or read
only for a dry run), its one connection and its transactions, and ``Store``, the one object
made of the table families that each keep their own module.

SQLite calls are short (indexed single-table statements in one transaction), so they run on the
event loop thread; the connection is used from that thread only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sidecar.engine.store.albums import AlbumTables
from sidecar.engine.store.cursors import CursorTables
from sidecar.engine.store.ingest import IngestTables
from sidecar.engine.store.members import MemberTables
from sidecar.engine.store.outbox import OutboxTables, SharedLinkTables
from sidecar.engine.store.post_runs import PostRunTables
from sidecar.engine.store.report import ReportTables
from sidecar.engine.store.schema import MIGRATIONS, StoreError, migrate
from sidecar.engine.store.unread import UnreadTables

WRITABLE_HINT = "set state.path to a writable file"


class Store(
    OutboxTables,
    PostRunTables,
    CursorTables,
    AlbumTables,
    IngestTables,
    MemberTables,
    UnreadTables,
    ReportTables,
    SharedLinkTables,
):
    """The state file as callers use it: the connection, its transactions and the methods of
    every table family (``store.outbox``, ``store.post_runs``, ``store.cursors``,
    ``store.albums``, ``store.ingest``, ``store.members``, ``store.unread``, ``store.report``, and
    the messages' shared links)."""

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
