"""Drains the outbox to the sinks: folds the rows of one asset and target into one delivery
(``merge``), groups due deliveries, sends, records the outcome.

A failed send is retried with exponential backoff (or after the time Discord asked for) and
survives restarts, because the retry time lives in the outbox row. A permanent failure becomes a
dead letter with its reason; one target failing never holds up another.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sidecar.clock import utc_now
from sidecar.config.model import Batching
from sidecar.engine.dispatch.merge import fold, message_key, repeats
from sidecar.engine.dispatch.quiet import QuietUntil, never_quiet
from sidecar.engine.store.database import Store
from sidecar.engine.store.outbox import Earlier
from sidecar.messages.render import ENGLISH, Words
from sidecar.ops.logging import log_fields
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import (
    Batch,
    Delivery,
    DeliveryError,
    PermanentDeliveryError,
    SentMessages,
    Sink,
    TemporaryDeliveryError,
)
from sidecar.wording import count

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 15.0
MAX_RETRY_SECONDS = 15 * 60.0
# About a day of attempts at the capped backoff: long enough for any Discord outage.
MAX_ATTEMPTS = 100
BATCH_LIMIT = 500  # deliveries taken from the outbox per round


@dataclass(frozen=True)
class RuleOptions:
    mention_roles: tuple[int, ...] = ()
    batching: Batching = field(default_factory=Batching)
    mention_members: bool = False
    words: Mapping[str, Words] = field(default_factory=dict)  # by target: language, templates


def retry_delay(attempts: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempts + 1``: what the server asked for, else an
    exponential backoff with jitter, capped."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_SECONDS)
    backoff = min(FIRST_RETRY_SECONDS * 2.0 ** max(attempts, 0), MAX_RETRY_SECONDS)
    return backoff * random.uniform(0.8, 1.2)


def options_of(rules: Sequence[str], options: Callable[[str], RuleOptions]) -> RuleOptions:
    """What a message of several rules does: every rule's mentions (each once), the first
    rule's batching and words (its language and templates)."""
    each = [options(rule) for rule in rules]
    roles = tuple(dict.fromkeys(role for o in each for role in o.mention_roles))
    return replace(
        each[0], mention_roles=roles, mention_members=any(o.mention_members for o in each)
    )


def group_batches(
    deliveries: list[Delivery],
    options: Callable[[str], RuleOptions],
) -> list[Batch]:
    """Batches in the order the deliveries were queued: a batch formed before (it has a key)
    comes back with the same members; new deliveries form one batch per target and rules (a
    delivery folded from several rules' rows goes with the others of the same rules), keyed by
    a new UUID. The key is stored before the first send and kept across retries, and it is
    unique across state files: a receiver that de-duplicates on it (the JSON webhook's
    ``X-Sidecar-Delivery``) never confuses two sidecars, or one before and after a state reset,
    as a row id would."""
    groups: dict[
        tuple[str, tuple[str, ...], str | None, str | None, str | None], list[Delivery]
    ] = {}
    for delivery in fold(deliveries):
        album = delivery.album.id if delivery.album is not None else None  # one album a message
        post = (
            f"{delivery.post.occasion}/{delivery.post.group}"  # one post message a batch
            if delivery.post is not None
            else None
        )
        groups.setdefault(
            (delivery.target, delivery.rules, delivery.batch_key, album, post), []
        ).append(delivery)
    batches = []
    for (target, rules, key, _album, _post), members in groups.items():
        opts = options_of(rules, options)
        batching = opts.batching
        if any(d.held for d in members):  # released from quiet hours: a summary, not a burst
            batching = replace(batching, summary_over=1)
        batches.append(
            Batch(
                rule=rules[0],
                target=target,
                deliveries=tuple(members),
                key=key or str(uuid.uuid4()),
                mention_roles=opts.mention_roles,
                batching=batching,
                mention_members=opts.mention_members,
                rules=rules if len(rules) > 1 else (),
                words=opts.words.get(target, ENGLISH),
            )
        )
    return batches


def row_ids(deliveries: Sequence[Delivery]) -> list[int]:
    """The outbox rows of these deliveries, folded ones included."""
    return [row for d in deliveries for row in d.row_ids]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        metrics: Metrics,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._sinks: Mapping[str, Sink] = {}
        self._options: Callable[[str], RuleOptions] = lambda _rule: RuleOptions()
        self._wake = asyncio.Event()
        self._logged_permanent: set[tuple[str, str]] = set()
        self._quiet: QuietUntil = never_quiet

    def configure(
        self,
        sinks: Mapping[str, Sink],
        options: Callable[[str], RuleOptions],
        quiet: QuietUntil = never_quiet,
    ) -> None:
        """Swap in the sinks, rule options and quiet hours of a new config (between sends)."""
        self._sinks = sinks
        self._options = options
        self._quiet = quiet
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send due deliveries until ``stop`` is set; a send in flight is finished first."""
        while not stop.is_set():
            try:
                await self.drain()
            except Exception:
                log.exception("dispatcher round failed; trying again shortly")
            self._wake.clear()
            wait = self._seconds_until_next_due()
            waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=wait, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()

    def _seconds_until_next_due(self) -> float:
        next_due = self._store.next_due_at()
        if next_due is None:
            return 60.0
        return min(max((next_due - self._clock()).total_seconds(), 0.05), 60.0)

    async def drain(self) -> int:
        """Send everything that is due now; returns how many deliveries were sent."""
        sent = 0
        while True:
            due = self._store.due(self._clock(), limit=BATCH_LIMIT)
            if not due:
                break
            ready = self._without_repeats(due)
            for batch in group_batches(ready, self._options):
                until = self._quiet_until(batch)
                if until is not None:
                    self._store.hold(row_ids(batch.deliveries), until)
                    log.info(
                        "target %s, rule %s: %s held by quiet hours until %s",
                        batch.target,
                        batch.rule,
                        count(len(batch.deliveries), "delivery", "deliveries"),
                        until.strftime("%H:%M"),
                        extra=log_fields(target=batch.target, rule=batch.rule),
                    )
                    continue
                sent += await self._send(batch)
            if len(due) < BATCH_LIMIT:
                break
        self._update_gauges()
        return sent

    def _without_repeats(self, due: list[Delivery]) -> list[Delivery]:
        """The due rows but those whose asset a batch formed before already sent to their
        target (closed with that batch: one message per asset there) or is still sending
        (they wait for it)."""
        fresh = [k for d in due if d.batch_key is None and (k := message_key(d)) is not None]
        if not fresh:
            return due
        found = repeats(due, self._store.earlier_messages(fresh))
        if found.closed:
            self._store.close_repeats(found.closed, self._clock())
            self._said_repeats(due, found.closed)
        if found.waiting:
            self._store.postpone(found.waiting)
        return list(found.rest)

    @staticmethod
    def _said_repeats(due: list[Delivery], closed: Mapping[int, Earlier]) -> None:
        counted: dict[tuple[str, str, str], int] = {}
        for delivery in due:
            if delivery.id in closed:
                key = (delivery.target, delivery.rule, closed[delivery.id].sent_rule)
                counted[key] = counted.get(key, 0) + 1
        for (target, rule, earlier), number in counted.items():
            log.info(
                "target %s, rule %s: %s already posted there by rule %s; not posted again",
                target,
                rule,
                count(number, "asset"),
                earlier,
                extra=log_fields(target=target, rule=rule),
            )

    def _quiet_until(self, batch: Batch) -> datetime | None:
        """When the quiet hours holding this batch end (None: send now). A message of several
        rules goes out as soon as one of them would send it."""
        now = self._clock()
        ends = [self._quiet(batch.target, rule, now) for rule in batch.rule_names]
        return None if any(end is None for end in ends) else min(e for e in ends if e)

    async def _send(self, batch: Batch) -> int:
        ids = row_ids(batch.deliveries)
        if any(d.batch_key is None for d in batch.deliveries):
            self._store.assign_batch(ids, batch.key)
        sink = self._sinks.get(batch.target)
        if sink is None:
            self._dead_letter(
                batch,
                PermanentDeliveryError(
                    "target_removed", f"target {batch.target!r} is no longer in the config"
                ),
            )
            return 0
        try:
            messages = await sink.send(batch)
        except DeliveryError as err:
            accepted = set(err.sent_ids)
            done = [d for d in batch.deliveries if d.id in accepted]
            sent = self._mark_sent(batch, done, err.messages)
            rest = replace(
                batch, deliveries=tuple(d for d in batch.deliveries if d.id not in accepted)
            )
            if isinstance(err, PermanentDeliveryError):
                self._dead_letter(rest, err)
            else:
                retry_after = err.retry_after if isinstance(err, TemporaryDeliveryError) else None
                self._retry_later(rest, err, retry_after)
            return sent
        except Exception as err:  # a sink bug must not lose the delivery: retry it
            log.exception("target %s: sending failed unexpectedly", batch.target)
            self._retry_later(batch, DeliveryError("error", type(err).__name__), None)
            return 0
        return self._mark_sent(batch, batch.deliveries, messages or {})

    def _mark_sent(
        self, batch: Batch, deliveries: Sequence[Delivery], messages: SentMessages
    ) -> int:
        """Record the deliveries sent (every rule's row of each, with the message that carried
        it where the sink knew it); returns how many rows."""
        ids = row_ids(deliveries)
        if ids:
            carried = {
                row: messages[d.id] for d in deliveries if d.id in messages for row in d.row_ids
            }
            self._store.mark_sent(ids, self._clock(), carried)
        per_rule: dict[str, int] = {}
        for delivery in deliveries:
            for rule in delivery.rules:
                per_rule[rule] = per_rule.get(rule, 0) + 1
        for rule, number in per_rule.items():
            self._metrics.notifications_sent.labels(rule=rule, target=batch.target).inc(number)
        return len(ids)

    def _retry_later(
        self,
        batch: Batch,
        err: DeliveryError,
        retry_after: float | None,
    ) -> None:
        self._metrics.notification_failures.labels(target=batch.target, reason=err.reason).inc()
        attempts = max(d.attempts for d in batch.deliveries)
        if attempts + 1 >= MAX_ATTEMPTS:
            self._dead_letter(
                batch,
                PermanentDeliveryError(
                    "gave_up", f"{attempts + 1} attempts failed, the last with {err}"
                ),
            )
            return
        delay = retry_delay(attempts, retry_after)
        log.warning(
            "target %s: %s not sent (%s); retrying in %.0fs",
            batch.target,
            count(len(batch.deliveries), "delivery", "deliveries"),
            err,
            delay,
            extra=log_fields(target=batch.target, rule=batch.rule, reason=err.reason),
        )
        self._store.mark_retry(
            row_ids(batch.deliveries), str(err), self._clock() + timedelta(seconds=delay)
        )

    def _dead_letter(self, batch: Batch, err: PermanentDeliveryError) -> None:
        self._metrics.notification_failures.labels(target=batch.target, reason=err.reason).inc()
        self._store.mark_failed(row_ids(batch.deliveries), str(err), self._clock())
        # Said once per target and reason: the fix is the same for every delivery.
        if (batch.target, err.reason) not in self._logged_permanent:
            self._logged_permanent.add((batch.target, err.reason))
            log.error(
                "target %s: deliveries failed for good: %s",
                batch.target,
                err,
                extra=log_fields(target=batch.target, rule=batch.rule, reason=err.reason),
            )

    def _update_gauges(self) -> None:
        counts = self._store.counts()
        self._metrics.outbox_pending.set(counts.pending)
        self._metrics.outbox_dead.set(counts.failed)
