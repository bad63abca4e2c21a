"""Nothing lost while a feature is off: a rule that a missing key permission turned off keeps
its place, and catches up from there when the permission comes back.

While a feature is off (``engine.access``), the rules that need it do not run, but the account's
cursors move on for the rules that do. So the first poll that finds a configured rule off holds
it: where the stream cursor stood (or the oldest unread window began, whose assets it has not
all decided either) and when the last poll started, in the state file, so a restart keeps it.
The first poll that finds the rule running again catches up before anything else: its people
rules look back ``poll.lookback`` from the held poll, its rules without people decide what the
stream cursor passed meanwhile (assets still unread are remembered as usual), and the outbox
makes each (rule, target, asset) once; then the hold is dropped. A crash in between catches up
again, which queues nothing twice. The sent rows a catch-up can reach are kept (``reach``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from sidecar.engine.rules.matching import CompiledRule, Match
from sidecar.engine.store.cursors import RuleHold
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.passes import AssetSearch, Watch, Window, collect_matches
from sidecar.wording import count

log = logging.getLogger(__name__)


def reach(holds: dict[str, RuleHold], watch: Watch) -> datetime | None:
    """The oldest creation time a catch-up of these holds looks at (None: no hold)."""
    moments = [min(h.stream_from, h.people_from - watch.lookback) for h in holds.values()]
    return min(moments) if moments else None


def hold_new(
    store: Store, watch: Watch, cursor: datetime, last_poll: datetime | None, now: datetime
) -> None:
    """Hold the rules that are off and not held yet, where this account's cursors stand."""
    if not watch.held:
        return
    holds = store.rule_holds()
    new = [name for name in watch.held if name not in holds]
    if not new:
        return
    unread = [w.created_after for w in store.unread_windows()]
    store.hold_rules(new, min([cursor, *unread]), last_poll or now, now)
    store.rule_baselines(new, since_if_new=now)  # one added while off starts from now
    log.info(
        "rules %s do not run: held where they stopped, to catch up once the key allows them",
        ", ".join(new),
    )


async def catch_up(
    client: AssetSearch,
    store: Store,
    watch: Watch,
    baselines: dict[str, datetime],
    on_page: Callable[[list[Match]], None],
    cursor: datetime,
    now: datetime,
) -> int:
    """Decide for the rules back on what they missed while held (see the module); returns how
    many assets it examined. Holds of rules no longer in the config are dropped."""
    holds = store.rule_holds()
    running = {r.name for r in watch.rules}
    gone = [name for name in holds if name not in running and name not in watch.held]
    if gone:
        store.release_holds(gone)
    back = [r for r in watch.rules if r.name in holds and not r.watches_albums]
    examined = 0

    def start_of(rule: CompiledRule) -> tuple[datetime, datetime]:
        return holds[rule.name].stream_from, holds[rule.name].people_from

    for point in sorted({start_of(r) for r in back}):  # the rules held at one point go together
        stream_from, people_from = point
        rules = tuple(r for r in back if start_of(r) == point)
        window = Window(
            people_since=people_from - watch.lookback,
            stream_after=stream_from,
            stream_before=max(cursor, stream_from),
            settled_before=now - watch.settle,
        )
        collected = await collect_matches(
            client, replace(watch, rules=rules), window, baselines, on_page, store, now
        )
        examined += collected.examined
        log.info(
            "%s back on: caught up from %s UTC (%s examined)",
            ", ".join(r.name for r in rules),
            f"{min(stream_from, people_from - watch.lookback):%Y-%m-%d %H:%M:%S}",
            count(collected.examined, "asset"),
        )
    if back:
        store.release_holds(r.name for r in back)
    return examined
