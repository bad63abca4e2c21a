"""``doctor``'s state checks: the state file can be made or written where it is, and an
existing one is the API key's user's (``run`` refuses another's)."""

from __future__ import annotations

import os
from pathlib import Path

from sidecar.config.model import Settings
from sidecar.engine.store.owner import RESET_FIX, StateOwner, owner_problem, read_owner
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError
from sidecar.masking import without_credentials
from sidecar.ops.checks import Check, failed, passed


def state_check(path: Path) -> Check:
    """The state file can be created, or read and written where it is. SQLite keeps its journal
    (``-wal``, ``-shm``) beside the file, so its folder must be writable too."""
    fix = "set state.path to a file in a folder this user may write"
    if path.exists():
        if path.is_dir():
            return failed(f"state.path {path} is a folder, not a file", fix)
        if not os.access(path, os.R_OK | os.W_OK):
            return failed(f"state.path {path}: the file is not writable", fix)
        if not os.access(path.parent, os.W_OK | os.X_OK):
            return failed(
                f"state.path {path}: cannot write beside it in {path.parent} (permission "
                "denied; SQLite keeps its journal there)",
                fix,
            )
        return passed(f"state.path {path} exists and is writable")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        return failed(f"state.path {path}: cannot create it in {folder} (permission denied)", fix)
    return passed(f"state.path {path} is writable (made at the first start)")


async def owner_checks(settings: Settings, client: ImmichClient) -> list[Check]:
    """An existing state file must be the key's user's (``run`` refuses another's)."""
    path = settings.state.path
    recorded = read_owner(path) if path.is_file() else None
    if recorded is None:  # a new file, or one from before the record: adopted at the start
        return []
    try:
        user = await client.me()
    except ImmichError as err:
        return [failed(f"could not ask Immich who the API key is ({err})", "check immich.api_key")]
    problem = owner_problem(
        path, recorded, StateOwner(user.id, user.name, without_credentials(settings.immich.url))
    )
    if problem is not None:
        return [failed(problem, RESET_FIX)]
    return [passed(f"state file {path} belongs to Immich user {user.name!r}, the key's user")]
