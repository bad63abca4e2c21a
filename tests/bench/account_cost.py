"""(g) What several Immich accounts cost an idle poll: HTTP requests and response bytes for 1, 2
and 4 accounts, each with its own people and a library of old photos, in-process against the
fake Immich (as ``poll_cost``). Idle cost grows with the number of accounts, not with the
size of their libraries."""

from __future__ import annotations

import contextlib
import tempfile
from datetime import timedelta
from pathlib import Path

from sidecar.config.model import Secret
from sidecar.engine.accounts import AccountPolls, Accounts, ImmichAccount
from sidecar.engine.rules.accounts import compile_across
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Person
from sidecar.ops.metrics import Metrics
from tests.bench.poll_cost import HOUSEHOLD, LOOKBACK, SETTLE, V2, V32, Clock, idle_budget
from tests.bench.report import Figure
from tests.fakes.fake_immich import FakeImmich

ACCOUNTS = (1, 2, 4)
LIBRARY = 2_000  # old photos of Alice per account, outside the look-back window


async def idle_cost(version: tuple[int, int, int], accounts: int, library: int) -> tuple[int, int]:
    """Requests and response bytes of one idle poll (the one after the first)."""
    clock = Clock()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeImmich(version=version) as immich, contextlib.AsyncExitStack() as stack:
            opened, candidates = [], {}
            for index in range(accounts):
                name, key = f"user{index}", f"key-{index}"
                owner = immich.add_user(name, api_key=key)
                people = {p: immich.add_person(p, owner=owner) for p in ("Alice", "Bob", "Carol")}
                immich.add_assets_bulk(
                    library,
                    owner=owner,
                    people=[people["Alice"]],
                    created_at=clock.now - timedelta(days=30),
                )
                client = await stack.enter_async_context(
                    ImmichClient(immich.url, Secret(key), Metrics(), max_attempts=1)
                )
                opened.append(ImmichAccount(name, client))
                candidates[name] = {p: [Person(i, p)] for p, i in people.items()}
            store = Store.open(Path(tmp) / "state.db")
            stack.callback(store.close)
            polls = AccountPolls(Accounts(opened), store, Metrics(), clock)
            targets = {r.name: r.targets for r in HOUSEHOLD}
            polls.start(targets, timedelta(hours=1))
            compiled = compile_across(HOUSEHOLD, candidates)
            watches = {
                name: Watch(rules, lambda n: targets[n], LOOKBACK, SETTLE)
                for name, rules in compiled.by_account.items()
            }
            clock.now += timedelta(seconds=2)
            await polls.poll(watches)  # connections open, cursors set
            clock.now += timedelta(seconds=2)
            immich.reset_requests()
            await polls.poll(watches)
            return len(immich.requests), sum(r.response_bytes for r in immich.requests)


async def run(section: str = "accounts") -> list[Figure]:
    figures = []
    for version in (V2, V32):
        label = "immich " + ".".join(map(str, version))
        for accounts in ACCOUNTS:
            requests, size = await idle_cost(version, accounts, LIBRARY)
            empty_requests, empty_size = await idle_cost(version, accounts, 0)
            budget = accounts * idle_budget(version)
            figures.append(
                Figure(
                    section,
                    f"{label}: idle poll, {accounts} account(s), {LIBRARY:,} old photos each",
                    f"{requests} req, {size:,} B (empty libraries: {empty_requests} req, "
                    f"{empty_size:,} B)",
                    f"<= {budget} req, same as empty",
                    requests <= budget and (requests, size) == (empty_requests, empty_size),
                )
            )
    return figures
