"""The state file's tables (migrated in order, one ``PRAGMA user_version`` step each) and how an
asset and a post's words are kept in a row (JSON)."""

from __future__ import annotations

import json
import sqlite3

from sidecar.immich.models import Asset
from sidecar.targets.base import PostRef

# Each entry migrates the schema from version N to N+1 (PRAGMA user_version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE rule_baseline (
        rule  TEXT PRIMARY KEY,
        since REAL NOT NULL
    );
    CREATE TABLE outbox (
        id               INTEGER PRIMARY KEY,
        rule             TEXT NOT NULL,
        target           TEXT NOT NULL,
        asset_id         TEXT NOT NULL,
        asset_created_at REAL NOT NULL,
        asset_json       TEXT NOT NULL,
        state            TEXT NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'sent', 'failed')),
        attempts         INTEGER NOT NULL DEFAULT 0,
        next_attempt_at  REAL NOT NULL,
        last_error       TEXT,
        queued_at        REAL NOT NULL,
        finished_at      REAL,
        UNIQUE (rule, target, asset_id)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE INDEX outbox_age ON outbox (state, asset_created_at);
    """,
    # A batch's membership is fixed before its first send, so a resend after a crash renders
    # the same messages (with the same nonces) instead of regrouping.
    """
    ALTER TABLE outbox ADD COLUMN batch_key TEXT;
    CREATE INDEX outbox_batch ON outbox (batch_key);
    """,
    # Album rules: what each watched album looked like at the last poll, and every asset ever
    # seen in it (kept when the asset is removed, so adding it back announces nothing). A
    # delivery of an album rule names its album.
    """
    CREATE TABLE album_state (
        album_id      TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        asset_count   INTEGER NOT NULL,
        updated_at    TEXT NOT NULL,
        last_modified TEXT,
        shared        INTEGER NOT NULL,
        buckets_json  TEXT NOT NULL
    );
    CREATE TABLE album_member (
        album_id TEXT NOT NULL,
        asset_id TEXT NOT NULL,
        PRIMARY KEY (album_id, asset_id)
    ) WITHOUT ROWID;
    ALTER TABLE outbox ADD COLUMN album_id TEXT;
    ALTER TABLE outbox ADD COLUMN album_name TEXT;
    """,
    # Scheduled posts: each run is keyed by (post, occasion), written in the same transaction
    # as its deliveries, so a restart, a reload or a second fire never posts twice. A post's
    # delivery carries its message (post_json). Rule matches are logged for digests (the
    # outbox forgets sent rows after the look-back window, a weekly digest needs longer).
    # A delivery held by quiet hours waits in its row (held) until the window's end.
    """
    CREATE TABLE post_run (
        post     TEXT NOT NULL,
        occasion TEXT NOT NULL,
        ran_at   REAL NOT NULL,
        sent     INTEGER NOT NULL,
        pictures TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (post, occasion)
    );
    CREATE TABLE match_log (
        rule       TEXT NOT NULL,
        asset_id   TEXT NOT NULL,
        matched_at REAL NOT NULL,
        asset_json TEXT NOT NULL,
        PRIMARY KEY (rule, asset_id)
    );
    CREATE INDEX match_log_time ON match_log (matched_at);
    ALTER TABLE outbox ADD COLUMN post_json TEXT;
    ALTER TABLE outbox ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    """,
    # Drag-and-drop ingest (discord.ingest): each channel message claimed before its uploads
    # and done after them, so it is never uploaded twice; how far each channel's history was
    # read; which channel each ingested asset came through (not announced back there).
    """
    CREATE TABLE ingest_message (
        channel_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        done       INTEGER NOT NULL DEFAULT 0,
        started_at REAL NOT NULL,
        PRIMARY KEY (channel_id, message_id)
    ) WITHOUT ROWID;
    CREATE TABLE ingest_cursor (
        channel_id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL
    );
    CREATE TABLE ingest_asset (
        asset_id   TEXT PRIMARY KEY,
        channel_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
    # People links made with /immich claim (pending until approved, one per member), each
    # member's DM preferences (muted; closed for good after Discord error 50007), and the DMs
    # already sent per delivery, so a retried delivery never DMs a member twice.
    """
    CREATE TABLE member_claim (
        user_id      TEXT PRIMARY KEY,
        person_id    TEXT NOT NULL,
        person_name  TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'approved')),
        requested_at REAL NOT NULL,
        decided_by   TEXT,
        problem      TEXT
    );
    CREATE INDEX member_claim_person ON member_claim (person_id);
    CREATE TABLE member_pref (
        user_id   TEXT PRIMARY KEY,
        dm_muted  INTEGER NOT NULL DEFAULT 0,
        dm_closed TEXT
    );
    CREATE TABLE member_dm (
        delivery_id INTEGER NOT NULL,
        user_id     TEXT NOT NULL,
        PRIMARY KEY (delivery_id, user_id)
    ) WITHOUT ROWID;
    """,
    # Rules without people: spans of upload time that still held assets Immich had not read
    # (an external library before metadata extraction), and the assets of each already decided.
    """
    CREATE TABLE unread_window (
        id             INTEGER PRIMARY KEY,
        created_after  REAL NOT NULL,
        created_before REAL NOT NULL,
        changed_since  REAL NOT NULL,
        opened_at      REAL NOT NULL
    );
    CREATE TABLE unread_seen (
        window_id INTEGER NOT NULL,
        asset_id  TEXT NOT NULL,
        PRIMARY KEY (window_id, asset_id)
    ) WITHOUT ROWID;
    """,
    # Several Immich accounts: each keeps its own cursors and baseline. The poll state a
    # single-key sidecar kept in meta (engine.uploads' keys) becomes the state of the account ''
    # (the one before accounts), which the first configured account takes over at start
    # (engine.store_accounts.adopt_account). Other meta keys stay shared. Unread windows
    # (engine.stream) are an account's too: another account's view of them differs.
    """
    CREATE TABLE account_meta (
        account TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   TEXT NOT NULL,
        PRIMARY KEY (account, key)
    ) WITHOUT ROWID;
    INSERT INTO account_meta (account, key, value) SELECT '', key, value FROM meta
        WHERE key IN ('baseline', 'stream_cursor', 'last_successful_poll_started');
    DELETE FROM meta WHERE key IN ('baseline', 'stream_cursor', 'last_successful_poll_started');
    ALTER TABLE unread_window ADD COLUMN account TEXT NOT NULL DEFAULT '';
    """,
    # The Discord message that carried a sent delivery (the send's answer), so `explain` and
    # the status page link to it; the server's id is null where the answer did not say.
    """
    ALTER TABLE outbox ADD COLUMN message_guild TEXT;
    ALTER TABLE outbox ADD COLUMN message_channel TEXT;
    ALTER TABLE outbox ADD COLUMN message_id TEXT;
    """,
    # Shared links (links: shared): the Immich shared link each message was given, kept before
    # the message is sent, so that a retry or a restart reuses it; pruned once expired.
    """
    CREATE TABLE shared_link (
        target     TEXT NOT NULL,
        message    TEXT NOT NULL,
        link_id    TEXT NOT NULL,
        key        TEXT NOT NULL,
        created_at REAL NOT NULL,
        expires_at REAL,
        PRIMARY KEY (target, message)
    ) WITHOUT ROWID;
    CREATE INDEX shared_link_expiry ON shared_link (expires_at);
    """,
    # Members across accounts: a member claims one person per Immich account. Earlier claims
    # were of the first account; they get the account '' (engine.store.members.LEGACY_CLAIMS),
    # which the first configured account takes over at start.
    """
    CREATE TABLE member_claim_by_account (
        user_id      TEXT NOT NULL,
        account      TEXT NOT NULL,
        person_id    TEXT NOT NULL,
        person_name  TEXT NOT NULL,
        state        TEXT NOT NULL CHECK (state IN ('pending', 'approved')),
        requested_at REAL NOT NULL,
        decided_by   TEXT,
        problem      TEXT,
        PRIMARY KEY (user_id, account)
    );
    INSERT INTO member_claim_by_account (user_id, account, person_id, person_name, state,
        requested_at, decided_by, problem)
        SELECT user_id, '', person_id, person_name, state, requested_at, decided_by, problem
        FROM member_claim;
    DROP TABLE member_claim;
    ALTER TABLE member_claim_by_account RENAME TO member_claim;
    CREATE INDEX member_claim_person ON member_claim (person_id);
    """,
    # One message per asset per target: the rows of other rules for the same asset and target
    # are looked up by (target, asset). An unread window is a rule kind's: rules without people
    # decide an asset once its metadata is there ('eager'), the others once it is settled (every
    # window before this one). A rule whose feature a missing permission turned off is held
    # where its account's cursors stood (rule_hold), and catches up from there when it is back.
    """
    CREATE INDEX outbox_message ON outbox (target, asset_id);
    ALTER TABLE unread_window ADD COLUMN kind TEXT NOT NULL DEFAULT 'settled';
    CREATE TABLE rule_hold (
        account     TEXT NOT NULL,
        rule        TEXT NOT NULL,
        stream_from REAL NOT NULL,
        people_from REAL NOT NULL,
        held_at     REAL NOT NULL,
        PRIMARY KEY (account, rule)
    ) WITHOUT ROWID;
    """,
)


class StoreError(Exception):
    """The state file cannot be opened or is from a newer version of the sidecar; the message
    is one line that names state.path and what to do."""


def migrate(db: sqlite3.Connection) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the state database has schema version {version}, newer than this sidecar knows "
            f"({len(MIGRATIONS)}); run a newer sidecar or move the file away"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def asset_json(asset: Asset) -> str:
    """The asset as queued, in the shape ``Asset.from_dict`` reads (a subset of Immich's)."""
    return json.dumps(
        {
            "id": asset.id,
            "type": asset.type,
            "createdAt": asset.created_at.isoformat(),
            "fileCreatedAt": asset.taken_at.isoformat() if asset.taken_at else None,
            "originalFileName": asset.original_file_name,
            "visibility": asset.visibility,
            "isTrashed": asset.is_trashed,
            "people": [{"id": p.id, "name": p.name} for p in asset.people],
            "exifInfo": {
                "city": asset.city,
                "country": asset.country,
                "description": asset.description,
            },
        },
        separators=(",", ":"),
    )


def post_json(ref: PostRef) -> str:
    return json.dumps(
        {
            "post": ref.post,
            "kind": ref.kind,
            "occasion": ref.occasion,
            "group": ref.group,
            "text": ref.text,
            "link": ref.link,
            "facts": dict(ref.facts),
        },
        separators=(",", ":"),
        ensure_ascii=False,
    )


def post_from_json(blob: str) -> PostRef:
    data = json.loads(blob)
    return PostRef(
        post=str(data["post"]),
        kind=str(data["kind"]),
        occasion=str(data["occasion"]),
        group=str(data["group"]),
        text=str(data["text"]),
        link=data.get("link"),
        facts=data.get("facts") or {},  # rows queued before facts were stored: the text
    )


def asset_from_json(blob: str) -> Asset:
    return Asset.from_dict(json.loads(blob))
