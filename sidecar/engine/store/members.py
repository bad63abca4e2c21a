"""The people links' part of the state file: claims (pending or approved; one per member and
Immich account), each member's DM preferences, and which DMs a delivery already sent."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime

LEGACY_CLAIMS = ""  # the account of claims made before accounts (the first account's)


@dataclass(frozen=True)
class Claim:
    """A member's claim on an Immich person of one account: ``pending`` until an approver
    decides, then ``approved`` (a denied claim is deleted). ``problem`` says why an approved
    link no longer works (the person was deleted or merged in Immich)."""

    user_id: int
    person_id: str
    person_name: str
    state: str
    requested_at: datetime
    decided_by: int | None = None
    problem: str | None = None
    account: str = LEGACY_CLAIMS

    @property
    def approved(self) -> bool:
        return self.state == "approved"


@dataclass(frozen=True)
class MemberPrefs:
    dm_muted: bool = False
    dm_closed: str | None = None  # why DMs to this member fail for good


_COLUMNS = "user_id, person_id, person_name, state, requested_at, decided_by, problem, account"


def _claim(row: tuple[object, ...]) -> Claim:
    user, person, name, state, requested, decided, problem, account = row
    return Claim(
        user_id=int(str(user)),
        person_id=str(person),
        person_name=str(name),
        state=str(state),
        requested_at=datetime.fromtimestamp(float(str(requested))).astimezone(),
        decided_by=int(str(decided)) if decided is not None else None,
        problem=str(problem) if problem is not None else None,
        account=str(account),
    )


class MemberTables:
    """The member tables of ``Store`` (which provides the connection and the transactions)."""

    _db: sqlite3.Connection

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # -- claims -------------------------------------------------------------------------------

    def claims(self) -> list[Claim]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM member_claim ORDER BY requested_at, account"  # noqa: S608
        )
        return [_claim(row) for row in rows]

    def claims_of(self, user_id: int) -> list[Claim]:
        """The member's claims, one per account at most."""
        return [c for c in self.claims() if c.user_id == user_id]

    def claim_for(self, user_id: int, person_id: str) -> Claim | None:
        return next((c for c in self.claims_of(user_id) if c.person_id == person_id), None)

    def put_claim(self, claim: Claim) -> None:
        """Make or replace the member's claim in the claim's account."""
        with self._transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO member_claim ({_COLUMNS}) "  # noqa: S608
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    str(claim.user_id),
                    claim.person_id,
                    claim.person_name,
                    claim.state,
                    claim.requested_at.timestamp(),
                    str(claim.decided_by) if claim.decided_by is not None else None,
                    claim.problem,
                    claim.account,
                ),
            )

    def approve_claim(self, user_id: int, person_id: str, approver: int) -> bool:
        """Approve the member's pending claim on ``person_id``; False when there is none
        (decided already, withdrawn, or replaced by a claim on someone else)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE member_claim SET state = 'approved', decided_by = ? "
                "WHERE user_id = ? AND person_id = ? AND state = 'pending'",
                (str(approver), str(user_id), person_id),
            ).rowcount
        return changed == 1

    def drop_claim(
        self, user_id: int, person_id: str | None = None, *, pending: bool = False
    ) -> bool:
        """Delete the member's claims (only those on ``person_id``, only pending ones); True
        when there was one."""
        query = "DELETE FROM member_claim WHERE user_id = ?"
        values: list[str] = [str(user_id)]
        if person_id is not None:
            query += " AND person_id = ?"
            values.append(person_id)
        if pending:
            query += " AND state = 'pending'"
        with self._transaction() as db:
            return db.execute(query, values).rowcount > 0

    def adopt_claims(self, old: str, new: str) -> int:
        """Claims of account ``old`` become ``new``'s (the first account takes the claims of a
        single-key sidecar), unless the member has a claim there already."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE OR IGNORE member_claim SET account = ? WHERE account = ?", (new, old)
            ).rowcount

    def set_claim_problem(self, user_id: int, person_id: str, problem: str | None) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE member_claim SET problem = ? WHERE user_id = ? AND person_id = ?",
                (problem, str(user_id), person_id),
            )

    # -- DM preferences -----------------------------------------------------------------------

    def member_prefs(self) -> dict[int, MemberPrefs]:
        return {
            int(user): MemberPrefs(bool(muted), closed)
            for user, muted, closed in self._db.execute(
                "SELECT user_id, dm_muted, dm_closed FROM member_pref"
            )
        }

    def set_dm_muted(self, user_id: int, muted: bool) -> None:
        """Mute or unmute; unmuting also forgets closed DMs (the member may have opened them)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO member_pref (user_id, dm_muted) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET dm_muted = excluded.dm_muted",
                (str(user_id), int(muted)),
            )
            if not muted:
                db.execute(
                    "UPDATE member_pref SET dm_closed = NULL WHERE user_id = ?", (str(user_id),)
                )

    def set_dm_closed(self, user_id: int, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO member_pref (user_id, dm_closed) VALUES (?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET dm_closed = excluded.dm_closed",
                (str(user_id), reason),
            )

    # -- DMs sent -----------------------------------------------------------------------------

    def dms_sent(self, delivery_ids: Iterable[int]) -> set[tuple[int, int]]:
        """(delivery id, user id) of the DMs already sent for these deliveries."""
        ids = list(delivery_ids)
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(
            f"SELECT delivery_id, user_id FROM member_dm WHERE delivery_id IN ({marks})",  # noqa: S608
            ids,
        )
        return {(int(d), int(u)) for d, u in rows}

    def record_dms(self, user_id: int, delivery_ids: Iterable[int]) -> None:
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO member_dm (delivery_id, user_id) VALUES (?, ?)",
                [(d, str(user_id)) for d in delivery_ids],
            )

    def forget_finished_dms(self) -> None:
        """DM marks of deliveries no longer pending (they are never sent again)."""
        with self._transaction() as db:
            db.execute(
                "DELETE FROM member_dm WHERE delivery_id NOT IN "
                "(SELECT id FROM outbox WHERE state = 'pending')"
            )
