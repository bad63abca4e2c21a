"""``immich-sidecar explain ASSET``: read the asset through every account and the state file
(read only, so it is safe while ``run`` runs), then print one block per rule.

Exit 0 whatever the verdict, 2 for a bad argument or config, 1 when Immich cannot be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import TextIO

from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, Settings
from sidecar.engine.accounts import Accounts
from sidecar.engine.explain.reader import AssetNotFound, AssetRefError, Explainer, asset_id_of
from sidecar.engine.explain.verdict import Explanation
from sidecar.engine.planning import resolve_account_rules
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.store.database import Store
from sidecar.immich.errors import ImmichError
from sidecar.immich.retry import quiet_library_retry_hooks
from sidecar.ops.metrics import Metrics


def explain(config_path: Path, asset: str, *, as_json: bool, out: TextIO | None = None) -> int:
    """The command: the exit code."""
    quiet_library_retry_hooks()
    try:
        asset_id = asset_id_of(asset)
    except AssetRefError as err:
        print(f"immich-sidecar explain: {err}", file=sys.stderr)
        return 2
    try:
        settings = load_settings(config_path)
    except ConfigError as err:
        for line in err.lines():
            print(line, file=sys.stderr)
        return 2
    try:
        answer = asyncio.run(_explain(settings, asset_id))
    except (RuleResolutionError, AssetNotFound) as err:
        lines = err.lines() if isinstance(err, RuleResolutionError) else [str(err)]
        for line in lines:
            print(line, file=sys.stderr)
        return 2
    except ImmichError as err:
        print(f"cannot read Immich: {err}", file=sys.stderr)
        return 1
    write(answer, as_json, out or sys.stdout)
    return 0


async def _explain(settings: Settings, asset_id: str) -> Explanation:
    async with contextlib.AsyncExitStack() as stack:
        accounts = await Accounts.open(settings, Metrics(), stack)
        rules = await resolve_account_rules(accounts, settings)
        store = Store.open_for_reading(settings.state.path)
        stack.callback(store.close)
        return await Explainer(settings, accounts, rules, store).explain(asset_id)


def write(answer: Explanation, as_json: bool, out: TextIO) -> None:
    if as_json:
        out.write(json.dumps(answer.json(), indent=2, ensure_ascii=False) + "\n")
        return
    for line in answer.lines():
        print(line, file=out)
