"""What the state file says about deliveries, read only: one asset's rows (``explain``), and the
figures of each rule and target and the last deliveries (the status page). Nothing here writes."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

from sidecar.targets.base import MessageRef


def _time(stamp: float | None) -> datetime | None:
    return None if stamp is None else datetime.fromtimestamp(stamp, UTC)


@dataclass(frozen=True)
class DeliveryRecord:
    """One outbox row as ``explain`` and the status page show it."""

    id: int
    rule: str
    target: str
    asset_id: str
    file_name: str
    state: str  # pending, sent, failed
    attempts: int
    last_error: str | None
    queued_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    held: bool  # waiting for the end of quiet hours
    album: str | None  # the album an album rule's asset was added to (its name)
    message: MessageRef | None  # the Discord message that carried it, where known


@dataclass(frozen=True)
class RouteFigures:
    """One (rule, target): what went out lately and what waits."""

    rule: str
    target: str
    sent_recently: int  # sent since the ``since`` asked for
    last_sent: datetime | None
    failed: int  # dead letters kept in the state file
    retrying: int  # pending after at least one failed attempt
    pending: int
    oldest_pending: datetime | None  # when the oldest pending one was queued


_RECORD_COLUMNS = (
    "id, rule, target, asset_id, asset_json, state, attempts, last_error, queued_at, "
    "next_attempt_at, finished_at, held, album_name, message_guild, message_channel, message_id"
)


def _record(row: tuple[object, ...]) -> DeliveryRecord:
    (row_id, rule, target, asset_id, blob, state, attempts, error, queued, due, finished) = row[:11]
    held, album, guild, channel, message = row[11:]
    try:
        name = str(json.loads(str(blob)).get("originalFileName") or "")
    except (ValueError, AttributeError):
        name = ""
    ref = (
        MessageRef(str(channel), str(message), None if guild is None else str(guild))
        if channel is not None and message is not None
        else None
    )
    return DeliveryRecord(
        id=int(str(row_id)),
        rule=str(rule),
        target=str(target),
        asset_id=str(asset_id),
        file_name=name,
        state=str(state),
        attempts=int(str(attempts)),
        last_error=None if error is None else str(error),
        queued_at=datetime.fromtimestamp(float(str(queued)), UTC),
        next_attempt_at=datetime.fromtimestamp(float(str(due)), UTC),
        finished_at=_time(None if finished is None else float(str(finished))),
        held=bool(held),
        album=None if album is None else str(album),
        message=ref,
    )


class ReportTables:
    """Read-only views of ``Store``'s outbox, match log and album members."""

    _db: sqlite3.Connection

    def deliveries_of(self, asset_id: str) -> list[DeliveryRecord]:
        """Every outbox row of one asset, in the order they were queued."""
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM outbox WHERE asset_id = ? ORDER BY id",  # noqa: S608 - a constant
            (asset_id,),
        )
        return [_record(row) for row in rows]

    def matched_at(self, asset_id: str) -> dict[str, datetime]:
        """When each rule matched the asset, as the match log keeps it (longer than sent rows)."""
        rows = self._db.execute(
            "SELECT rule, matched_at FROM match_log WHERE asset_id = ?", (asset_id,)
        )
        return {str(rule): datetime.fromtimestamp(stamp, UTC) for rule, stamp in rows}

    def albums_holding(self, asset_id: str) -> set[str]:
        """The watched albums the album watcher has seen the asset in."""
        rows = self._db.execute("SELECT album_id FROM album_member WHERE asset_id = ?", (asset_id,))
        return {str(album_id) for (album_id,) in rows}

    def last_deliveries(self, limit: int = 50) -> list[DeliveryRecord]:
        """The deliveries sent last, newest first."""
        rows = self._db.execute(
            f"SELECT {_RECORD_COLUMNS} FROM outbox WHERE state = 'sent' "  # noqa: S608 - a constant
            "ORDER BY finished_at DESC, id DESC LIMIT ?",
            (limit,),
        )
        return [_record(row) for row in rows]

    def route_figures(self, since: datetime) -> list[RouteFigures]:
        """Each (rule, target) the outbox holds rows of, by rule and target."""
        rows = self._db.execute(
            "SELECT rule, target, "
            "SUM(state = 'sent' AND finished_at >= ?), "
            "MAX(CASE WHEN state = 'sent' THEN finished_at END), "
            "SUM(state = 'failed'), "
            "SUM(state = 'pending' AND attempts > 0), "
            "SUM(state = 'pending'), "
            "MIN(CASE WHEN state = 'pending' THEN queued_at END) "
            "FROM outbox GROUP BY rule, target ORDER BY rule, target",
            (since.timestamp(),),
        )
        return [
            RouteFigures(
                str(rule),
                str(target),
                int(sent),
                _time(last),
                int(failed),
                int(retrying),
                int(pending),
                _time(oldest),
            )
            for rule, target, sent, last, failed, retrying, pending, oldest in rows
        ]

    def last_matches(self) -> dict[str, datetime]:
        """When each rule last matched an asset (the match log)."""
        rows = self._db.execute("SELECT rule, MAX(matched_at) FROM match_log GROUP BY rule")
        return {str(rule): datetime.fromtimestamp(stamp, UTC) for rule, stamp in rows}
