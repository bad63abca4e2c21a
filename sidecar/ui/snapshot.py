"""The status page's data (``/api/status``, version ``STATUS_VERSION``), from the running
sidecar's parts. Names, counts and times only: never a secret, an API key or a webhook URL.

The shape is documented in docs/status-page.md; within a version, fields are only added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sidecar import __version__
from sidecar.config.checks import post_trigger, zone_of
from sidecar.config.model import QuietHours, Settings
from sidecar.engine.status import StatusInfo
from sidecar.engine.store.database import Store
from sidecar.engine.store.report import DeliveryRecord, RouteFigures
from sidecar.targets.registry import kind_of

STATUS_VERSION = 1
LAST_DELIVERIES = 50


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _quiet(hours: QuietHours | None) -> str | None:
    return f"{hours.start:%H:%M}-{hours.end:%H:%M}" if hours else None


def status_data(
    settings: Settings, info: StatusInfo, store: Store, now: datetime
) -> dict[str, Any]:
    """The whole page as plain JSON values."""
    routes = store.route_figures(now - timedelta(hours=24))
    return {
        "version": STATUS_VERSION,
        "generated_at": now.isoformat(),
        "timezone": settings.timezone,
        "sidecar": {
            "version": __version__,
            "immich_reachable": info.immich_reachable,
            "immich_version": info.immich_version,
            "last_successful_poll": _iso(info.last_successful_poll),
            "features_off": list(info.features_off),
            "outbox": {"pending": info.outbox_pending, "failed": info.outbox_failed},
            "poll_interval_seconds": settings.poll.interval,
        },
        "accounts": _accounts(settings, info),
        "rules": _rules(settings, routes, store.last_matches()),
        "targets": _targets(settings, routes),
        "deliveries": [_delivery(d) for d in store.last_deliveries(LAST_DELIVERIES)],
        "posts": _posts(settings, now),
        "config": {
            "file": str(settings.source),
            "loaded_at": info.config_loaded_at.isoformat(),
            "last_reload_error": list(info.reload_error),
        },
    }


def _accounts(settings: Settings, info: StatusInfo) -> list[dict[str, Any]]:
    push = settings.push is not None
    names = info.accounts or settings.immich.account_names
    pushed = set(info.pushed) if info.pushed else {names[0]}  # push starts with the first
    first = next((name for name in names if name in pushed), None)
    failing = dict(info.failing)
    down = None if info.immich_reachable else "Immich is not reachable"
    return [
        {
            "name": name,
            "up": info.immich_reachable and name not in failing,
            "problem": failing.get(name) or down,
            "immich_version": info.immich_version,
            # Immich pushes the uploads of the accounts with a workflow (each its owner's);
            # the last push is any account's, shown on the first pushed one.
            "push": {
                "on": push and name in pushed,
                "last": _iso(info.last_push) if name == first else None,
            },
        }
        for name in names
    ]


def _route(figures: RouteFigures) -> dict[str, Any]:
    return {
        "target": figures.target,
        "sent_24h": figures.sent_recently,
        "last_sent": _iso(figures.last_sent),
        "failed": figures.failed,
        "retrying": figures.retrying,
        "pending": figures.pending,
        "oldest_pending": _iso(figures.oldest_pending),
    }


def _rules(
    settings: Settings, routes: Sequence[RouteFigures], last_match: Mapping[str, datetime]
) -> list[dict[str, Any]]:
    return [
        {
            "name": rule.name,
            "kind": "album" if rule.albums.any else "upload",
            "targets": list(rule.targets),
            "last_match": _iso(last_match.get(rule.name)),
            "routes": [_route(r) for r in routes if r.rule == rule.name],
        }
        for rule in settings.rules
    ]


def _targets(settings: Settings, routes: Sequence[RouteFigures]) -> list[dict[str, Any]]:
    found = []
    for name, target in settings.targets.items():
        mine = [r for r in routes if r.target == name]
        oldest = min((r.oldest_pending for r in mine if r.oldest_pending), default=None)
        last = max((r.last_sent for r in mine if r.last_sent), default=None)
        found.append(
            {
                "name": name,
                "kind": kind_of(target).label[0],
                "quiet_hours": _quiet(target.quiet_hours),
                "sent_24h": sum(r.sent_recently for r in mine),
                "last_sent": _iso(last),
                "failed": sum(r.failed for r in mine),
                "retrying": sum(r.retrying for r in mine),
                "pending": sum(r.pending for r in mine),
                "oldest_pending": _iso(oldest),
            }
        )
    return found


def _delivery(record: DeliveryRecord) -> dict[str, Any]:
    return {
        "asset_id": record.asset_id,
        "file_name": record.file_name,
        "rule": record.rule,
        "target": record.target,
        "sent_at": _iso(record.finished_at),
        "album": record.album,
        "link": record.message.link if record.message else None,
    }


def _posts(settings: Settings, now: datetime) -> list[dict[str, Any]]:
    zone = zone_of(settings.timezone) or ZoneInfo("UTC")
    return [
        {
            "name": post.name,
            "kind": post.kind,
            "cron": post.cron,
            "targets": list(post.targets),
            "next_run": _iso(post_trigger(post.cron, zone).get_next_fire_time(None, now)),
        }
        for post in settings.posts
    ]
