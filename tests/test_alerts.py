"""Alert rules, their promtool unit tests, the Grafana alert provisioning and the dashboard: they
parse, and they name only metrics (and labels) the sidecar exports."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from sidecar.ops.metrics import Metrics
from tests.toolcheck import require_tool

FILES = Path(__file__).resolve().parents[1] / "helm" / "immich-discord-sidecar" / "files"
ALERTS = FILES / "alerts.yaml"
ALERT_TESTS = FILES / "alerts.test.yaml"
GRAFANA_ALERTS = FILES / "grafana-alerts.yaml"
DASHBOARD = FILES / "dashboard.json"

METRIC = re.compile(r"\bimmich_sidecar_[a-z0-9_]+\b")
BY_CLAUSE = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
SEVERITIES = {"critical", "warning", "info"}


def exported_series() -> dict[str, set[str]]:
    """Every series name the sidecar can expose, with its label names."""
    series: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        name, kind = metric._name, metric._type
        assert kind is not None
        labels = set(metric._labelnames)
        suffixes = {
            "counter": ["_total", "_created"],
            "gauge": [""],
            "histogram": ["_bucket", "_sum", "_count", "_created"],
        }[kind]
        for suffix in suffixes:
            series[name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return series


SERIES = exported_series()


def check_expression(expr: str) -> None:
    names = METRIC.findall(expr)
    assert names, f"no sidecar metric in {expr!r}"
    unknown = sorted(set(names) - set(SERIES))
    assert not unknown, f"{expr!r} names metrics the sidecar does not export: {unknown}"
    available = set().union(*(SERIES[n] for n in names))
    for clause in BY_CLAUSE.findall(expr):
        for label in filter(None, (part.strip() for part in clause.split(","))):
            assert label in available, f"{expr!r} groups by {label!r}, which no metric has"


def prometheus_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_series_table_knows_counters_and_histograms() -> None:
    assert "immich_sidecar_immich_requests_total" in SERIES
    assert "le" in SERIES["immich_sidecar_immich_request_duration_seconds_bucket"]
    assert SERIES["immich_sidecar_notification_failures_total"] == {"target", "reason"}
    with pytest.raises(AssertionError):
        check_expression("rate(immich_sidecar_immich_requests[5m])")
    with pytest.raises(AssertionError):
        check_expression("sum by (asset_id) (rate(immich_sidecar_immich_requests_total[5m]))")


def test_promtool_accepts_the_rules() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "check", "rules", str(ALERTS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    result = subprocess.run(
        [promtool, "test", "rules", ALERT_TESTS.name],
        cwd=FILES,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def healthy_series_without_a_bot() -> list[dict[str, str]]:
    """promtool input series: every sample a freshly started sidecar without a bot exports, as
    its own registry renders it, held for 30 minutes; the poll timestamp advances each minute."""
    metrics = Metrics()
    metrics.build_info.labels(version="0.1.0").set(1)  # what Sidecar.start sets
    metrics.config_last_reload_successful.set(1)
    metrics.config_last_reload_success_timestamp.set(0)
    metrics.last_successful_poll.set(0)
    series = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            advancing = sample.name == "immich_sidecar_last_successful_poll_timestamp_seconds"
            series.append(
                {
                    "series": f"{sample.name}{{{labels}}}",
                    "values": "0+60x30" if advancing else f"{sample.value:g}x30",
                }
            )
    return series


def test_a_healthy_sidecar_without_a_bot_raises_no_alert(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    series = healthy_series_without_a_bot()
    assert not any("discord_connected" in s["series"] for s in series)
    checks = [
        {"eval_time": "30m", "alertname": r["alert"], "exp_alerts": []} for r in prometheus_rules()
    ]
    case = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    test_file = tmp_path / "no-bot.test.yaml"
    test_file.write_text(yaml.safe_dump(case))
    result = subprocess.run(
        [promtool, "test", "rules", test_file.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_treats_a_missing_discord_series_as_ok() -> None:
    [rule] = [r for r in grafana_rules() if r["title"] == "ImmichSidecarDiscordDisconnected"]
    assert rule["noDataState"] == "OK"  # absent without a bot


EXPECTED_ALERTS = {
    "ImmichSidecarImmichRequestsFailing": "immich_sidecar_immich_request_failures_total",
    "ImmichSidecarImmichRetriesClimbing": "immich_sidecar_immich_request_retries_total",
    "ImmichSidecarPollStale": "immich_sidecar_last_successful_poll_timestamp_seconds",
    "ImmichSidecarDeliveriesFailing": "immich_sidecar_notification_failures_total",
    "ImmichSidecarOutboxGrowing": "immich_sidecar_outbox_pending",
    "ImmichSidecarConfigReloadFailed": "immich_sidecar_config_last_reload_successful",
    "ImmichSidecarDiscordDisconnected": "immich_sidecar_discord_connected",
    "ImmichSidecarPostFailed": "immich_sidecar_post_runs_total",
    "ImmichSidecarFeatureOff": "immich_sidecar_feature_enabled",
}


def test_every_required_alert_exists_on_its_metric() -> None:
    rules = {r["alert"]: r for r in prometheus_rules()}
    for alert, metric in EXPECTED_ALERTS.items():
        assert alert in rules, f"missing alert {alert}"
        assert metric in rules[alert]["expr"]
    assert (
        "time() - immich_sidecar_last_successful_poll_timestamp_seconds"
        in rules["ImmichSidecarPollStale"]["expr"]
    )


@pytest.mark.parametrize("rule", prometheus_rules(), ids=lambda r: r["alert"])
def test_each_alert_has_for_severity_and_advice(rule: dict[str, Any]) -> None:
    check_expression(rule["expr"])
    assert re.fullmatch(r"\d+[smh]", rule["for"])
    assert rule["labels"]["severity"] in SEVERITIES
    assert rule["annotations"]["summary"].strip()
    assert "check" in rule["annotations"]["description"].lower(), "say what to check"


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    doc = yaml.safe_load(ALERT_TESTS.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {r["alert"] for r in prometheus_rules()}
    assert names - firing == set(), "alerts without a test in which they fire"
    assert names - quiet == set(), "alerts without a test in which they stay quiet"


def grafana_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(GRAFANA_ALERTS.read_text())
    assert doc["apiVersion"] == 1
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_grafana_alerts_mirror_the_prometheus_rules() -> None:
    prometheus = {r["alert"]: r for r in prometheus_rules()}
    grafana = {r["title"]: r for r in grafana_rules()}
    assert set(grafana) == set(prometheus)
    for title, rule in grafana.items():
        assert rule["for"] == prometheus[title]["for"]
        assert rule["labels"]["severity"] == prometheus[title]["labels"]["severity"]


@pytest.mark.parametrize("rule", grafana_rules(), ids=lambda r: r["title"])
def test_grafana_rule_is_well_formed(rule: dict[str, Any]) -> None:
    assert len(rule["uid"]) <= 40
    refs = {d["refId"]: d for d in rule["data"]}
    assert rule["condition"] in refs
    queries = [d for d in rule["data"] if d["datasourceUid"] != "__expr__"]
    assert queries, "a rule needs a Prometheus query"
    for query in queries:
        check_expression(query["model"]["expr"])
    for expression in (d for d in rule["data"] if d["datasourceUid"] == "__expr__"):
        assert expression["model"]["expression"] in refs
    # Grafana's file provisioning expands $NAME from the environment: none may be left.
    assert "$" not in json.dumps(rule["annotations"])
    assert rule["noDataState"] in {"OK", "NoData", "Alerting"}


def test_grafana_uids_are_unique() -> None:
    uids = [r["uid"] for r in grafana_rules()]
    assert len(uids) == len(set(uids))


def dashboard_targets() -> list[dict[str, Any]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_dashboard_is_valid_with_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "immich-discord-sidecar"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for target in dashboard_targets():
        assert target["datasource"]["uid"] == "${datasource}"


@pytest.mark.parametrize("target", dashboard_targets(), ids=lambda t: t["expr"][:60])
def test_dashboard_queries_name_exported_metrics(target: dict[str, Any]) -> None:
    check_expression(target["expr"])


def test_dashboard_covers_polls_immich_deliveries_outbox_and_reloads() -> None:
    used = {n for t in dashboard_targets() for n in METRIC.findall(t["expr"])}
    for needed in (
        "immich_sidecar_last_successful_poll_timestamp_seconds",
        "immich_sidecar_poll_runs_total",
        "immich_sidecar_immich_requests_total",
        "immich_sidecar_immich_request_failures_total",
        "immich_sidecar_immich_request_retries_total",
        "immich_sidecar_notifications_sent_total",
        "immich_sidecar_notification_failures_total",
        "immich_sidecar_outbox_pending",
        "immich_sidecar_config_reloads_total",
    ):
        assert needed in used, f"the dashboard does not show {needed}"
