"""Every Prometheus metric the sidecar exports, in one registry.

Metric names are an interface: the alert rules and the Grafana dashboard in the Helm chart
depend on them. Labels stay low-cardinality: never an asset id, a person name or a URL.

The metrics are a table: one ``counter``/``gauge``/``histogram`` line in the body of
``Metrics`` per metric, read as a typed attribute (``metrics.poll_runs`` is a ``Counter``).
Adding a metric is adding a line there (and its row in the metrics table of docs/metrics.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar, overload

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

PREFIX = "immich_sidecar_"

M = TypeVar("M", Counter, Gauge, Histogram)


@dataclass(frozen=True)
class MetricDef(Generic[M]):
    """One exported metric. A class attribute of ``Metrics``; each instance holds, under the
    same attribute name, the collector made from it in the instance's own registry."""

    kind: type[M]
    name: str  # without PREFIX; a Counter's exported name gains ``_total``
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()  # a Histogram's; empty for the others
    registered: bool = True  # False: exported only once something registers it
    attr: str = field(default="", init=False, compare=False)  # the name in Metrics' body

    def __set_name__(self, owner: type[Any], name: str) -> None:
        object.__setattr__(self, "attr", name)

    def create(self, registry: CollectorRegistry) -> M:
        extra: dict[str, Any] = {"buckets": self.buckets} if self.buckets else {}
        target = registry if self.registered else None
        return self.kind(PREFIX + self.name, self.help, self.labels, registry=target, **extra)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, instance: Metrics, owner: type[Any]) -> M: ...
    def __get__(self, instance: Metrics | None, owner: type[Any]) -> Self | M:
        # Metrics.__init__ sets the collector on the instance, which then shadows this; the
        # overloads are what give ``metrics.poll_runs`` its type.
        if instance is None:
            return self
        collector: M = vars(instance)[self.attr]
        return collector


def counter(name: str, help: str, *labels: str) -> MetricDef[Counter]:
    return MetricDef(Counter, name, help, labels)


def gauge(name: str, help: str, *labels: str, registered: bool = True) -> MetricDef[Gauge]:
    return MetricDef(Gauge, name, help, labels, registered=registered)


def histogram(
    name: str, help: str, *labels: str, buckets: tuple[float, ...]
) -> MetricDef[Histogram]:
    return MetricDef(Histogram, name, help, labels, buckets)


class Metrics:
    """All metrics of one sidecar, registered in a registry of its own (never the global one),
    so that every test and every app instance starts from zero. Exported in the order below."""

    immich_requests = counter(
        "immich_requests",
        "Immich API responses, by endpoint and HTTP status.",
        "endpoint",
        "status",
    )
    immich_request_retries = counter(
        "immich_request_retries", "Immich API requests that were retried.", "endpoint"
    )
    immich_request_failures = counter(
        "immich_request_failures",
        "Immich API calls that failed for good (after retries), by reason.",
        "endpoint",
        "reason",
    )
    immich_request_duration = histogram(
        "immich_request_duration_seconds",
        "Duration of one Immich API request.",
        "endpoint",
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    poll_runs = counter("poll_runs", "Poll runs, by result (success, failure).", "result")
    last_successful_poll = gauge(
        "last_successful_poll_timestamp_seconds",
        "Unix time at which the last successful poll finished.",
    )
    poll_duration = histogram(
        "poll_duration_seconds",
        "Duration of one poll run.",
        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    )
    notifications_sent = counter(
        "notifications_sent",
        "Deliveries (rule, target, asset) sent, by rule and target name.",
        "rule",
        "target",
    )
    notification_failures = counter(
        "notification_failures",
        "Failed send attempts, by target name and reason, each counted once: also one a "
        "target kind retried with success, and each batch kept for later or given up on.",
        "target",
        "reason",
    )
    discord_retries = counter(
        "discord_retries",
        "Discord requests sent again after a rate limit or server error (an answer that is "
        "not retried does not count).",
    )
    discord_too_large = counter(
        "discord_too_large",
        "Messages Discord refused as too large (413), by target name; each is sent again once "
        "with less (smaller pictures, then no videos), never unchanged.",
        "target",
    )
    outbox_pending = gauge("outbox_pending", "Deliveries waiting in the outbox.")
    outbox_dead = gauge("outbox_dead", "Deliveries that failed for good (dead letters).")
    config_last_reload_successful = gauge(
        "config_last_reload_successful", "1 if the last config load or reload was valid, else 0."
    )
    config_last_reload_success_timestamp = gauge(
        "config_last_reload_success_timestamp_seconds",
        "Unix time of the last successful config load or reload.",
    )
    config_reloads = counter(
        "config_reloads", "Config reloads, by result (success, failure, unchanged).", "result"
    )
    # Not registered until track_discord_connection(): without a bot the series is absent,
    # so the disconnected alert (== 0) cannot fire for webhook- or console-only installs.
    discord_connected = gauge(
        "discord_connected",
        "1 while the Discord bot is connected to the gateway, else 0 (absent without a bot).",
        registered=False,
    )
    albums_watched = gauge("albums_watched", "Albums that album rules watch for additions.")
    album_changes = counter(
        "album_changes", "Watched albums found changed by a poll (then examined for additions)."
    )
    album_assets_added = counter(
        "album_assets_added",
        "Assets found added to watched albums (before the rules filter them).",
    )
    post_runs = counter(
        "post_runs",
        "Scheduled post runs by post name (from the config) and result: sent, nothing "
        "(no occasion today), skipped (already posted for this occasion), failure.",
        "post",
        "result",
    )
    post_next_run = gauge(
        "post_next_run_timestamp_seconds", "When each scheduled post runs next (Unix time).", "post"
    )
    push_requests = counter(
        "push_requests",
        "Requests to the Immich push endpoint, by result: accepted, unauthorized (wrong or "
        "missing secret), too_large, malformed.",
        "result",
    )
    push_assets = counter(
        "push_assets",
        "Assets named by accepted pushes, by result: queued (new deliveries), nothing (no "
        "rule decides it now), unknown (Immich does not know the id), failed (Immich error).",
        "result",
    )
    fast_poll_windows = counter(
        "fast_poll_windows", "Fast-poll windows opened (new uploads seen while people rules exist)."
    )
    fast_polls = counter(
        "fast_polls", "Fast polls of the people rules, by result (success, failure).", "result"
    )
    feature_enabled = gauge(
        "feature_enabled",
        "1 for each feature the config uses that the Immich API key allows, 0 while the key "
        "lacks a permission it needs (feature: watching, people, album_watching, ...).",
        "feature",
    )
    # Several Immich accounts: `account` is a name from immich.accounts (a few at most).
    account_up = gauge(
        "account_up",
        "1 while an Immich account's polls succeed, 0 while its key fails (revoked, 401).",
        "account",
    )
    account_outages = counter(
        "account_outages",
        "Outages of an Immich account (counted once when its polls start failing).",
        "account",
    )
    build_info = gauge("build_info", "Build information; the value is always 1.", "version")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        # What the global registry would have had: process_resident_memory_bytes,
        # process_cpu_seconds_total, python_info and the garbage collector's counts.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        for definition in DEFINITIONS:
            setattr(self, definition.attr, definition.create(self.registry))
        self._discord_tracked = False

    def track_discord_connection(self) -> None:
        """Export ``discord_connected`` (0 until the bot connects). Called once a bot exists;
        calling it again does nothing."""
        if not self._discord_tracked:
            self.registry.register(self.discord_connected)
            self._discord_tracked = True


# The table above, in its order: what every Metrics instance creates.
DEFINITIONS: tuple[MetricDef[Any], ...] = tuple(
    value for value in vars(Metrics).values() if isinstance(value, MetricDef)
)
