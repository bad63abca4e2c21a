"""Whose state file it is: the Immich user (and server) its cursors and baselines belong to.

A state file used against another user's library would skip that library's backfill (its
cursor is past it) and announce nothing it should. The user's id identifies both: Immich makes
user ids as random UUIDs, so another server has other ids, while the same server reached at a
new address (moved behind a proxy, a new port) keeps them. The address is kept only to say
where the file came from. Immich has no server id an API key can read (``GET /server/about``
names the build, not the installation).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sidecar.engine.store.database import Store
from sidecar.engine.store.schema import StoreError
from sidecar.immich.models import ImmichUser
from sidecar.masking import without_credentials

log = logging.getLogger(__name__)

OWNER_KEY = "immich_owner"


class StateOwnerError(StoreError):
    """The state file belongs to another Immich user or server."""


@dataclass(frozen=True)
class StateOwner:
    user_id: str
    user_name: str
    url: str

    def to_json(self) -> str:
        return json.dumps({"user_id": self.user_id, "user_name": self.user_name, "url": self.url})

    @classmethod
    def from_json(cls, text: str) -> StateOwner | None:
        try:
            data = json.loads(text)
            return cls(str(data["user_id"]), str(data.get("user_name", "")), str(data.get("url")))
        except (ValueError, KeyError, TypeError):
            return None


RESET_FIX = (
    "run `immich-sidecar run --reset-state` to move the old file aside and start a new one (or "
    "set state.path to a file of this user's own)"
)


def owner_problem(path: Path, recorded: StateOwner, current: StateOwner) -> str | None:
    """What is wrong when the state file was made for another user (the fix is RESET_FIX)."""
    if recorded.user_id == current.user_id:
        return None
    return (
        f"state file {path} belongs to Immich user {recorded.user_name!r} ({recorded.user_id}) "
        f"at {recorded.url}, but the API key is user {current.user_name!r} ({current.user_id}) "
        f"at {current.url}"
    )


def check_owner(store: Store, user: ImmichUser, url: str) -> None:
    """Adopt the state file for ``user`` the first time (a new file, or one older than this
    record), keep the address current, and raise StateOwnerError for another user's file."""
    current = StateOwner(user.id, user.name, without_credentials(url))
    text = store.get_meta(OWNER_KEY)
    recorded = StateOwner.from_json(text) if text is not None else None
    if recorded is not None:
        problem = owner_problem(store.path, recorded, current)
        if problem is not None:
            raise StateOwnerError(f"{problem}: {RESET_FIX}")
        if recorded == current:
            return
        if recorded.url != current.url:
            log.info(
                "Immich is now at %s (the state file knew it at %s)", current.url, recorded.url
            )
    store.set_meta(OWNER_KEY, current.to_json())


def read_owner(path: Path) -> StateOwner | None:
    """The owner recorded in an existing state file (doctor); None when none is recorded."""
    store = Store.open_for_reading(path)
    try:
        text = store.get_meta(OWNER_KEY)
    finally:
        store.close()
    return StateOwner.from_json(text) if text is not None else None


def move_aside(path: Path, now: datetime | None = None) -> Path | None:
    """``--reset-state``: rename the state file (and SQLite's journal beside it) to
    ``<name>.reset-<UTC time>``; nothing is deleted. Returns the new name, None without a file."""
    if not path.exists():
        return None
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    aside = path.with_name(f"{path.name}.reset-{stamp}")
    for suffix in ("-wal", "-shm"):  # a journal left by a crash holds the file's last writes
        journal = path.with_name(path.name + suffix)
        if journal.exists():
            os.replace(journal, aside.with_name(aside.name + suffix))
    os.replace(path, aside)
    return aside
