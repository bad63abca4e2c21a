"""Why a rule posted an asset, waits with it, or will not post it (pure).

Every reason comes from the function that decides: the matcher (``rules.matching.check``), the
accounts a rule runs in (``rules.accounts.account_problem``), the baseline
(``matching.before_baseline``), the look-back window and settle (``uploads.poller``:
``window_for``, ``people_since``, ``settled_for``), the unread windows (``uploads.stream``),
quiet hours (``dispatch.quiet``) and the outbox rows the dispatcher keeps. Nothing here decides
anew; it asks those and puts their answers into words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sidecar.config.model import Rule, Settings
from sidecar.engine.dispatch.quiet import quiet_policy
from sidecar.engine.explain.verdict import (
    NOT_SEEN,
    POSTED,
    QUEUED,
    WILL_NOT_POST,
    Clock,
    Verdict,
    span,
    zone_named,
)
from sidecar.engine.rules.accounts import AccountRules
from sidecar.engine.rules.matching import CompiledRule, Miss, before_baseline, check
from sidecar.engine.store.report import DeliveryRecord
from sidecar.engine.store.unread import UnreadWindow
from sidecar.engine.uploads.poller import people_since, settled_for, window_for
from sidecar.engine.uploads.stream import METADATA_WAIT
from sidecar.immich.models import Asset
from sidecar.wording import count


@dataclass(frozen=True)
class AccountFacts:
    """One account's poll state, as the state file holds it."""

    name: str
    last_poll: datetime | None  # when its last successful poll started
    stream_cursor: datetime | None  # rules without people decided uploads up to here
    baselines: Mapping[str, datetime]  # rule -> when it started watching (in this account)
    # the open unread windows, each with whether this asset was decided in it
    unread: tuple[tuple[UnreadWindow, bool], ...] = ()


@dataclass(frozen=True)
class Facts:
    """Everything ``explain`` knows of one asset, read beforehand."""

    now: datetime
    settings: Settings
    rules: AccountRules  # compiled for each account
    seen: Mapping[str, Asset]  # account -> the asset as that account reads it, config order
    owner: str | None  # the account whose asset it is
    accounts: Mapping[str, AccountFacts]
    deliveries: tuple[DeliveryRecord, ...]
    matched: Mapping[str, datetime]  # rule -> when the match log recorded it
    in_albums: frozenset[str] = frozenset()  # watched albums the watcher saw it in
    albums_now: frozenset[str] = frozenset()  # watched albums Immich lists it in now
    push_on: bool = False
    last_push: datetime | None = None
    clock: Clock = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "clock", Clock(self.now, zone_named(self.settings.timezone)))


def rule_verdicts(rule: Rule, facts: Facts) -> tuple[Verdict, ...]:
    """What ``rule`` says of the asset: its deliveries if it queued any, else why not."""
    rows = [d for d in facts.deliveries if d.rule == rule.name]
    if rows:
        return tuple(delivery_verdict(row, facts) for row in rows)
    if rule.name in facts.matched:
        when = facts.matched[rule.name]
        return (
            Verdict(
                POSTED,
                f"matched at {facts.clock.long(when)}; the delivery's record is gone (sent "
                "rows are kept for twice the look-back window)",
                at=when,
            ),
        )
    found = _compiled_where_seen(rule, facts)
    if isinstance(found, Verdict):
        return (found,)
    account, compiled, asset = found
    if compiled.watches_albums:
        return (album_verdict(compiled, asset, facts),)
    return (upload_verdict(compiled, asset, facts.accounts[account], facts),)


def _compiled_where_seen(rule: Rule, facts: Facts) -> tuple[str, CompiledRule, Asset] | Verdict:
    """The first account that reads the asset and runs the rule, or why none does."""
    reasons: list[str] = []
    for account, asset in facts.seen.items():
        compiled = next(
            (r for r in facts.rules.by_account.get(account, ()) if r.name == rule.name), None
        )
        if compiled is not None:
            return account, compiled, asset
        why = facts.rules.dropped.get(account, {}).get(rule.name)
        if why is None:
            why = f"the rule does not run in account {account} now (a feature it needs is off)"
        reasons.append(why + (", who owns it" if account == facts.owner else ""))
    return Verdict(WILL_NOT_POST, "; ".join(reasons) or "no account can read the asset")


def delivery_verdict(row: DeliveryRecord, facts: Facts) -> Verdict:
    """A queued delivery: sent, failed for good, or what it waits for."""
    clock = facts.clock
    album = f" (added to album {row.album})" if row.album else ""
    if row.state == "sent":
        assert row.finished_at is not None
        message = row.message
        link = message.link if message is not None else None
        where = link or (
            f"message {message.message_id} in channel {message.channel_id}" if message else ""
        )
        said = f"at {clock.long(row.finished_at)}{album}" + (f": {where}" if where else "")
        return Verdict(POSTED, said, row.target, row.finished_at, link)
    if row.state == "failed":
        return Verdict(WILL_NOT_POST, f"the delivery failed for good: {row.last_error}", row.target)
    quiet_until = quiet_policy(facts.settings)(row.target, row.rule, facts.now)
    if row.held or quiet_until is not None:
        until = row.next_attempt_at if row.held else quiet_until
        assert until is not None
        return Verdict(
            QUEUED,
            f"quiet hours until {clock.short(until)}",
            row.target,
            until,
            None,
            "quiet_hours",
        )
    if row.attempts:
        said = (
            f"sending failed {count(row.attempts, 'time')} (last error: {row.last_error}); "
            f"next retry at {clock.short(row.next_attempt_at)}"
        )
        return Verdict(QUEUED, said, row.target, row.next_attempt_at, None, "retry")
    due = max(row.next_attempt_at, facts.now)
    said = f"queued at {clock.short(row.queued_at)}; sent as soon as the dispatcher gets to it"
    return Verdict(QUEUED, said, row.target, due, None, "dispatch")


def upload_verdict(
    rule: CompiledRule, asset: Asset, account: AccountFacts, facts: Facts
) -> Verdict:
    """A rule that fires on new uploads, for an asset it has not queued."""
    clock = facts.clock
    poll = facts.settings.poll
    lookback, settle = timedelta(seconds=poll.lookback), timedelta(seconds=poll.settle)
    if before_baseline(asset, since := account.baselines.get(rule.name)):
        assert since is not None
        return Verdict(
            WILL_NOT_POST,
            f"uploaded before the rule started watching ({clock.long(since)}): a rule added "
            "later does not announce older assets",
        )
    cursor = account.stream_cursor or facts.now
    window = window_for(facts.now, account.last_poll, cursor, lookback, settle)
    verdict = check(rule, asset)
    if rule.requires_person:
        since = people_since([rule], window, account.baselines)
        return _person_verdict(rule, asset, verdict, since, facts)
    return _stream_verdict(rule, asset, verdict, account, facts)


def _person_verdict(
    rule: CompiledRule, asset: Asset, verdict: object, since: datetime, facts: Facts
) -> Verdict:
    clock, poll = facts.clock, facts.settings.poll
    lookback = span(poll.lookback)
    if asset.created_at < since:
        why = verdict.reason + "; " if isinstance(verdict, Miss) else ""
        return Verdict(
            WILL_NOT_POST,
            f"{why}uploaded before the look-back window ({lookback}), so the rule no longer "
            "looks at it",
        )
    if isinstance(verdict, Miss):
        until = asset.created_at + timedelta(seconds=poll.lookback)
        later = (
            f"; the rule looks again at each poll until {clock.short(until)} (look-back "
            f"{lookback}), in case Immich recognises faces late"
            if verdict.faces_may_come
            else ""
        )
        return Verdict(WILL_NOT_POST, verdict.reason + later)
    settled = window_for(facts.now, None, facts.now, timedelta(0), timedelta(seconds=poll.settle))
    if not settled_for(rule, asset, settled):
        until = asset.created_at + timedelta(seconds=poll.settle)
        return Verdict(
            QUEUED,
            f"settle until {clock.short(until)}: faces may still be recognised, and the rule "
            "excludes people (none:)",
            at=until,
            waits_for="settle",
        )
    return not_seen(facts, "it matches")


def _stream_verdict(
    rule: CompiledRule, asset: Asset, verdict: object, account: AccountFacts, facts: Facts
) -> Verdict:
    """A rule without people decides each upload once, when it settled and Immich read it."""
    clock, settle = facts.clock, timedelta(seconds=facts.settings.poll.settle)
    if isinstance(verdict, Miss):
        return Verdict(WILL_NOT_POST, verdict.reason)
    cursor = account.stream_cursor
    if cursor is None or asset.created_at > cursor:
        until = asset.created_at + settle
        if until > facts.now:
            said = f"settle until {clock.short(until)}: new uploads are decided once settled"
            return Verdict(QUEUED, said, at=until, waits_for="settle")
        return not_seen(facts, "it matches")
    for window, decided in account.unread:
        if not window.created_after <= asset.created_at <= window.created_before or decided:
            continue
        give_up = window.opened_at + METADATA_WAIT
        if not asset.has_exif:
            return Verdict(
                QUEUED,
                "waiting for metadata: Immich has not extracted it yet (the file is not read; "
                f"an external library or a job backlog); decided once it is, at the latest "
                f"at {clock.long(give_up)}",
                at=give_up,
                waits_for="metadata",
            )
        return not_seen(facts, "its metadata arrived")
    return Verdict(
        WILL_NOT_POST,
        "decided when it was uploaded, and did not match then (rules without people decide "
        "each upload once; it may have been archived, or its type or people differed)",
    )


def album_verdict(rule: CompiledRule, asset: Asset, facts: Facts) -> Verdict:
    """An album rule fires on additions to its albums."""
    watched = sorted(rule.albums)
    album_names = ", ".join(rule.album_label(a) for a in watched)
    held = [a for a in watched if a in facts.in_albums]
    now = [a for a in watched if a in facts.albums_now]
    if not held and not now:
        return Verdict(WILL_NOT_POST, f"not in album {album_names}")
    verdict = check(rule, asset)
    if isinstance(verdict, Miss):
        return Verdict(WILL_NOT_POST, verdict.reason)
    if not held:
        added = ", ".join(rule.album_label(a) for a in now)
        return not_seen(facts, f"it was added to album {added} since the last poll")
    return Verdict(
        WILL_NOT_POST,
        f"it was already in album {album_names} when the rule started watching it (an album's "
        "first members are not announced), or was added while it was off the timeline",
    )


def not_seen(facts: Facts, why: str) -> Verdict:
    """Not looked at yet: when the next poll is, and whether push is on."""
    clock, interval = facts.clock, timedelta(seconds=facts.settings.poll.interval)
    polls = [a.last_poll for a in facts.accounts.values() if a.last_poll is not None]
    push = (
        f"push is on (last push {clock.short(facts.last_push)})"
        if facts.push_on and facts.last_push
        else "push is on (no push received yet)"
        if facts.push_on
        else "push is off"
    )
    if not polls:
        return Verdict(NOT_SEEN, f"{why}; no poll has run yet; {push}")
    next_poll = max(polls) + interval
    if next_poll < facts.now - interval:
        said = f"{why}; the last poll was at {clock.short(max(polls))}: is the sidecar running?"
        return Verdict(NOT_SEEN, f"{said}; {push}", at=None)
    shown = max(next_poll, facts.now)
    said = (
        f"{why}; the next poll is at {clock.short(shown)} (every {span(interval.total_seconds())})"
    )
    return Verdict(NOT_SEEN, f"{said}; {push}", at=shown)
