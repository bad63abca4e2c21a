"""Every Prometheus metric the sidecar exports, in one registry.

Metric names are an interface: the alert rules and the Grafana dashboard in the Helm chart
depend on them. Labels stay low-cardinality: never an asset id, a person name or a URL.
"""

from __future__ import annotations

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


class Metrics:
    """All metrics of one sidecar, registered in a registry of its own (never the global one),
    so that every test and every app instance starts from zero."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        # What the global registry would have had: process_resident_memory_bytes,
        # process_cpu_seconds_total, python_info and the garbage collector's counts.
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.immich_requests = Counter(
            PREFIX + "immich_requests",
            "Immich API responses, by endpoint and HTTP status.",
            ["endpoint", "status"],
            registry=r,
        )
        self.immich_request_retries = Counter(
            PREFIX + "immich_request_retries",
            "Immich API requests that were retried.",
            ["endpoint"],
            registry=r,
        )
        self.immich_request_failures = Counter(
            PREFIX + "immich_request_failures",
            "Immich API calls that failed for good (after retries), by reason.",
            ["endpoint", "reason"],
            registry=r,
        )
        self.immich_request_duration = Histogram(
            PREFIX + "immich_request_duration_seconds",
            "Duration of one Immich API request.",
            ["endpoint"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.poll_runs = Counter(
            PREFIX + "poll_runs", "Poll runs, by result (success, failure).", ["result"], registry=r
        )
        self.last_successful_poll = Gauge(
            PREFIX + "last_successful_poll_timestamp_seconds",
            "Unix time at which the last successful poll finished.",
            registry=r,
        )
        self.poll_duration = Histogram(
            PREFIX + "poll_duration_seconds",
            "Duration of one poll run.",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.notifications_sent = Counter(
            PREFIX + "notifications_sent",
            "Deliveries (rule, target, asset) sent, by rule and target name.",
            ["rule", "target"],
            registry=r,
        )
        self.notification_failures = Counter(
            PREFIX + "notification_failures",
            "Failed delivery attempts, by target name and reason.",
            ["target", "reason"],
            registry=r,
        )
        self.discord_retries = Counter(
            PREFIX + "discord_retries",
            "Discord requests sent again after a rate limit or server error (an answer that is "
            "not retried does not count).",
            registry=r,
        )
        self.outbox_pending = Gauge(
            PREFIX + "outbox_pending", "Deliveries waiting in the outbox.", registry=r
        )
        self.outbox_dead = Gauge(
            PREFIX + "outbox_dead", "Deliveries that failed for good (dead letters).", registry=r
        )
        self.config_last_reload_successful = Gauge(
            PREFIX + "config_last_reload_successful",
            "1 if the last config load or reload was valid, else 0.",
            registry=r,
        )
        self.config_last_reload_success_timestamp = Gauge(
            PREFIX + "config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load or reload.",
            registry=r,
        )
        self.config_reloads = Counter(
            PREFIX + "config_reloads",
            "Config reloads, by result (success, failure, unchanged).",
            ["result"],
            registry=r,
        )
        # Not registered until track_discord_connection(): without a bot the series is absent,
        # so the disconnected alert (== 0) cannot fire for webhook- or console-only installs.
        self.discord_connected = Gauge(
            PREFIX + "discord_connected",
            "1 while the Discord bot is connected to the gateway, else 0 (absent without a bot).",
            registry=None,
        )
        self._discord_tracked = False
        self.albums_watched = Gauge(
            PREFIX + "albums_watched", "Albums that album rules watch for additions.", registry=r
        )
        self.album_changes = Counter(
            PREFIX + "album_changes",
            "Watched albums found changed by a poll (then examined for additions).",
            registry=r,
        )
        self.album_assets_added = Counter(
            PREFIX + "album_assets_added",
            "Assets found added to watched albums (before the rules filter them).",
            registry=r,
        )
        self.post_runs = Counter(
            PREFIX + "post_runs",
            "Scheduled post runs by post name (from the config) and result: sent, nothing "
            "(no occasion today), skipped (already posted for this occasion), failure.",
            ["post", "result"],
            registry=r,
        )
        self.post_next_run = Gauge(
            PREFIX + "post_next_run_timestamp_seconds",
            "When each scheduled post runs next (Unix time).",
            ["post"],
            registry=r,
        )
        self.feature_enabled = Gauge(
            PREFIX + "feature_enabled",
            "1 for each feature the config uses that the Immich API key allows, 0 while the key "
            "lacks a permission it needs (feature: watching, people, album_watching, ...).",
            ["feature"],
            registry=r,
        )
        self.build_info = Gauge(
            PREFIX + "build_info",
            "Build information; the value is always 1.",
            ["version"],
            registry=r,
        )

    def track_discord_connection(self) -> None:
        """Export ``discord_connected`` (0 until the bot connects). Called once a bot exists;
        calling it again does nothing."""
        if not self._discord_tracked:
            self.registry.register(self.discord_connected)
            self._discord_tracked = True
