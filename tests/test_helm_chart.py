"""The Helm chart: lint, render with every values file, validate the manifests offline, and check
what a home-lab install depends on (secure pod, hot-reloadable config mount, secret wiring,
switches, one replica)."""

from __future__ import annotations

import copy
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config.loader import load_settings
from tests.toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "immich-discord-sidecar"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBERNETES_VERSION = "1.30.0"

Manifest = dict[str, Any]
Render = Callable[..., list[Manifest]]


@pytest.fixture(scope="module")
def helm() -> str:
    return require_tool("helm")


def run_template(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm, "template", "photos", str(CHART), "--namespace", "immich", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def render(helm: str) -> Render:
    """Rendered manifests for values files and --set pairs (key__sub=value); cached per module
    because many tests look at the same rendering, and copied because some change it."""
    cache: dict[tuple[tuple[Path, ...], tuple[tuple[str, str], ...]], list[Manifest]] = {}

    def _render(*values_files: Path, **sets: str) -> list[Manifest]:
        key = (values_files, tuple(sorted(sets.items())))
        if key not in cache:
            args: list[str] = []
            for f in values_files:
                args += ["-f", str(f)]
            for name, value in sets.items():
                args += ["--set", f"{name.replace('__', '.')}={value}"]
            result = run_template(helm, *args)
            assert result.returncode == 0, result.stderr
            cache[key] = [d for d in yaml.safe_load_all(result.stdout) if d]
        return copy.deepcopy(cache[key])

    return _render


def one(manifests: list[Manifest], kind: str, name_suffix: str = "") -> Manifest:
    found = [
        m for m in manifests if m["kind"] == kind and m["metadata"]["name"].endswith(name_suffix)
    ]
    assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {len(found)}"
    return found[0]


def kinds(manifests: list[Manifest]) -> list[str]:
    return sorted(m["kind"] for m in manifests)


def pod_spec(manifests: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = one(manifests, "Deployment")["spec"]["template"]["spec"]
    return spec


def container(manifests: list[Manifest]) -> dict[str, Any]:
    containers = pod_spec(manifests)["containers"]
    assert len(containers) == 1
    c: dict[str, Any] = containers[0]
    return c


def config_file(manifests: list[Manifest]) -> dict[str, Any]:
    cm = one(manifests, "ConfigMap", "immich-discord-sidecar")
    doc: dict[str, Any] = yaml.safe_load(cm["data"]["config.yaml"])
    return doc


VALUES_CASES = [pytest.param((), id="default"), *[pytest.param((f,), id=f.stem) for f in CI_VALUES]]


def test_there_are_ci_values_files() -> None:
    assert len(CI_VALUES) >= 3


@pytest.mark.parametrize("values", VALUES_CASES)
def test_lint_strict(helm: str, values: tuple[Path, ...]) -> None:
    args = [a for f in values for a in ("-f", str(f))]
    result = subprocess.run(
        [helm, "lint", "--strict", str(CHART), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", VALUES_CASES)
def test_rendered_manifests_are_valid_kubernetes(
    render: Render, values: tuple[Path, ...], tmp_path: Path
) -> None:
    validator = require_tool("kubernetes-validate")
    manifests = render(*values)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(
        [validator, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_validator_rejects_an_unknown_field(render: Render, tmp_path: Path) -> None:
    """Guards the check above: a validator that passes everything would prove nothing."""
    validator = require_tool("kubernetes-validate")
    manifests = render()
    pod_spec(manifests)["containers"][0]["securityContex"] = {}
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump_all(manifests))
    result = subprocess.run(
        [validator, "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(broken)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("values", VALUES_CASES)
def test_pod_meets_the_restricted_pod_security_standard(
    render: Render, values: tuple[Path, ...]
) -> None:
    manifests = render(*values)
    pod = pod_spec(manifests)
    c = container(manifests)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    assert sc["runAsNonRoot"] is True
    assert sc["runAsUser"] == 10001
    assert sc.get("privileged", False) is False
    assert pod["automountServiceAccountToken"] is False
    for forbidden in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(forbidden)
    assert all("hostPath" not in v for v in pod["volumes"])


@pytest.mark.parametrize("values", VALUES_CASES)
def test_one_replica_recreated_never_rolled(render: Render, values: tuple[Path, ...]) -> None:
    deployment = one(render(*values), "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("values", VALUES_CASES)
def test_config_is_a_directory_mount_and_tmp_is_writable(
    render: Render, values: tuple[Path, ...]
) -> None:
    manifests = render(*values)
    mounts = {m["mountPath"]: m for m in container(manifests)["volumeMounts"]}
    assert all("subPath" not in m and "subPathExpr" not in m for m in mounts.values())
    assert set(mounts) >= {"/config", "/data", "/tmp"}
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert "configMap" in volumes[mounts["/config"]["name"]]
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert container(manifests)["args"] == ["run", "-c", "/config/config.yaml"]


def test_probes_use_healthz_and_readyz_on_the_metrics_port(render: Render) -> None:
    manifests = render()
    c = container(manifests)
    assert c["ports"] == [{"name": "metrics", "containerPort": 9187, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    service = one(manifests, "Service")
    assert service["spec"]["ports"][0]["port"] == 9187
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert config_file(manifests)["metrics"]["listen"] == "0.0.0.0:9187"


def test_log_format_and_level_reach_the_sidecar(render: Render) -> None:
    env = {e["name"]: e.get("value") for e in container(render())["env"]}
    assert (env["SIDECAR_LOG_FORMAT"], env["SIDECAR_LOG_LEVEL"]) == ("text", "INFO")
    env = {e["name"]: e.get("value") for e in container(render(logFormat="json"))["env"]}
    assert env["SIDECAR_LOG_FORMAT"] == "json"


def test_existing_secret_is_wired_through_env_from(render: Render) -> None:
    manifests = render(existingSecret="my-immich-secrets")
    assert "Secret" not in kinds(manifests)
    assert container(manifests)["envFrom"] == [{"secretRef": {"name": "my-immich-secrets"}}]
    config = config_file(manifests)
    assert config["immich"]["api_key"] == "${IMMICH_API_KEY}"


def test_secret_values_create_a_secret_that_restarts_the_pod_on_change(render: Render) -> None:
    manifests = render(
        secretValues__IMMICH_API_KEY="immich-key-7f3a",
        secretValues__DISCORD_TOKEN="discord-token-9c1e",
    )
    secret = one(manifests, "Secret")
    assert secret["stringData"] == {
        "IMMICH_API_KEY": "immich-key-7f3a",
        "DISCORD_TOKEN": "discord-token-9c1e",
    }
    assert container(manifests)["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    elsewhere = json.dumps([m for m in manifests if m["kind"] != "Secret"])
    assert "immich-key-7f3a" not in elsewhere and "discord-token-9c1e" not in elsewhere

    def secret_checksum(manifests: list[Manifest]) -> str:
        template = one(manifests, "Deployment")["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/secret"]
        return value

    changed = render(
        secretValues__IMMICH_API_KEY="immich-key-new",
        secretValues__DISCORD_TOKEN="discord-token-9c1e",
    )
    assert secret_checksum(manifests) != secret_checksum(changed)


def test_without_any_secret_there_is_no_env_from(render: Render) -> None:
    manifests = render()
    assert "Secret" not in kinds(manifests)
    assert "envFrom" not in container(manifests)


def test_default_config_is_filled_in_and_valid_for_the_sidecar(
    render: Render, tmp_path: Path
) -> None:
    config = config_file(render())
    assert config["immich"]["url"] == "http://immich-server:2283"
    assert config["state"]["path"] == "/data/state.db"
    # A dry start: with no rules of its own, everything goes to the pod's log.
    assert config["targets"] == {"log": {"console": True}}
    assert config["rules"] == [{"name": "everything", "targets": ["log"]}]
    validate_against_sidecar_schema(config, tmp_path)


@pytest.mark.parametrize(
    "values", [f for f in CI_VALUES if "configmap" not in f.name], ids=lambda f: f.stem
)
def test_ci_configs_are_valid_for_the_sidecar(render: Render, values: Path, tmp_path: Path) -> None:
    config = config_file(render(values))
    validate_against_sidecar_schema(config, tmp_path)
    user = yaml.safe_load(values.read_text())
    assert config["rules"] == user["config"]["rules"]
    assert "log" not in config["targets"]


def validate_against_sidecar_schema(config: dict[str, Any], tmp_path: Path) -> None:
    """Load the rendered file with the sidecar's own loader, secrets given as dummies."""
    path = tmp_path / "config.yaml"
    text = yaml.safe_dump(config)
    path.write_text(text)
    environ = {
        name: (
            f"https://discord.com/api/webhooks/1/{name.lower()}"
            if name.endswith("URL") or "WEBHOOK" in name
            else f"dummy-{name.lower()}"
        )
        for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)
    }
    settings = load_settings(path, environ)
    assert settings.state.path == Path("/data/state.db")
    assert (settings.metrics.host, settings.metrics.port) == ("0.0.0.0", 9187)


def test_user_config_keeps_its_own_immich_url_and_discord_token_reference(
    render: Render, tmp_path: Path
) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "config": {
                    "immich": {"url": "http://photos:2283", "api_key_file": "/run/secrets/key"},
                    "discord": {"commands": {"person": {"enabled": False}}},
                }
            }
        )
    )
    config = config_file(render(values))
    assert config["immich"] == {"url": "http://photos:2283", "api_key_file": "/run/secrets/key"}
    assert config["discord"]["token"] == "${DISCORD_TOKEN}"
    assert config["discord"]["commands"] == {"person": {"enabled": False}}


def test_existing_config_map_and_claim_are_used_as_given(render: Render) -> None:
    manifests = render(existingConfigMap="my-config", persistence__existingClaim="my-state")
    assert "ConfigMap" not in kinds(manifests)
    assert "PersistentVolumeClaim" not in kinds(manifests)
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert volumes["config"]["configMap"]["name"] == "my-config"
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == "my-state"


def test_persistence_creates_a_claim_or_falls_back_to_empty_dir(render: Render) -> None:
    manifests = render()
    claim = one(manifests, "PersistentVolumeClaim")
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]

    manifests = render(persistence__enabled="false")
    assert "PersistentVolumeClaim" not in kinds(manifests)
    volumes = {v["name"]: v for v in pod_spec(manifests)["volumes"]}
    assert volumes["data"] == {"name": "data", "emptyDir": {}}


def test_config_checksum_only_without_hot_reload(render: Render) -> None:
    def checksum(**sets: str) -> str | None:
        template = one(render(**sets), "Deployment")["spec"]["template"]
        annotations: dict[str, str] = template["metadata"].get("annotations") or {}
        return annotations.get("checksum/config")

    assert checksum() is None
    first = checksum(hotReload="false")
    assert first is not None
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert checksum(hotReload="false") == first, "the checksum is stable for the same config"
    assert checksum(hotReload="false", config__poll__interval="10m") != first
    # An existing ConfigMap's content is unknown to the chart: nothing to checksum.
    assert checksum(hotReload="false", existingConfigMap="my-config") is None


@pytest.mark.parametrize(
    ("switch", "kind", "suffix"),
    [
        ("serviceMonitor", "ServiceMonitor", ""),
        ("prometheusRule", "PrometheusRule", ""),
        ("grafanaDashboard", "ConfigMap", "-dashboard"),
        ("grafanaAlerts", "ConfigMap", "-grafana-alerts"),
    ],
)
def test_switches_render_their_resource_only_when_enabled(
    render: Render, switch: str, kind: str, suffix: str
) -> None:
    def matching(manifests: list[Manifest]) -> list[Manifest]:
        return [
            m
            for m in manifests
            if m["kind"] == kind
            and m["metadata"]["name"] == f"photos-immich-discord-sidecar{suffix}"
        ]

    assert matching(render()) == []
    assert len(matching(render(**{f"{switch}__enabled": "true"}))) == 1


def test_service_monitor_scrapes_the_metrics_port(render: Render) -> None:
    manifests = render(serviceMonitor__enabled="true", serviceMonitor__labels__release="kps")
    monitor = one(manifests, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    service = one(manifests, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()


def stale_poll_rules(manifests: list[Manifest]) -> tuple[str, str]:
    """The stale-poll expressions of the PrometheusRule and of the Grafana alerts."""
    rule = one(manifests, "PrometheusRule")["spec"]["groups"][0]["rules"]
    prometheus = next(r for r in rule if r["alert"] == "ImmichSidecarPollStale")["expr"]
    (content,) = one(manifests, "ConfigMap", "-grafana-alerts")["data"].values()
    grafana = next(line for line in content.splitlines() if "last_successful_poll" in line)
    return prometheus, grafana


def test_prometheus_rule_holds_the_alert_file_with_the_poll_interval(render: Render) -> None:
    manifests = render(
        prometheusRule__enabled="true",
        grafanaAlerts__enabled="true",
        config__poll__interval="1h30m",
    )
    rule = one(manifests, "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    rendered = rule["spec"]["groups"]
    assert [r["alert"] for r in rendered[0]["rules"]] == [
        r["alert"] for r in source["groups"][0]["rules"]
    ]
    prometheus, grafana = stale_poll_rules(manifests)
    assert prometheus.endswith("> 3 * 5400")  # three times config.poll.interval
    assert grafana.endswith("- 3 * 5400")
    # Prometheus templates in annotations reach the cluster untouched by Helm.
    failing = next(
        r for r in rendered[0]["rules"] if r["alert"] == "ImmichSidecarImmichRequestsFailing"
    )
    assert "{{ $labels.endpoint }}" in failing["annotations"]["summary"]


@pytest.mark.parametrize(
    ("interval", "seconds"), [("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), (None, 120)]
)
def test_the_stale_poll_alert_follows_config_poll_interval(
    render: Render, interval: str | None, seconds: int
) -> None:
    sets = {"prometheusRule__enabled": "true", "grafanaAlerts__enabled": "true"}
    if interval is not None:
        sets["config__poll__interval"] = interval
    else:
        sets["config__poll"] = "null"
    prometheus, grafana = stale_poll_rules(render(**sets))
    assert prometheus.endswith(f"> 3 * {seconds}")
    assert grafana.endswith(f"- 3 * {seconds}")


def test_the_chart_takes_the_whole_config(helm: str, tmp_path: Path) -> None:
    """posts, timezone, push, accounts, discord.members and ingest: what the sidecar accepts,
    the chart renders into a file the sidecar loads."""
    values = {
        "config": {
            "timezone": "Europe/Paris",
            "immich": {
                "accounts": {"dad": {"api_key": "${DAD_KEY}"}, "mum": {"api_key": "${MUM_KEY}"}}
            },
            "discord": {
                "members": {"Alice": "123456789012345678"},
                "ingest": [{"channel_id": "234567890123456789", "allowed_roles": ["family"]}],
            },
            "push": {"secret": "${IMMICH_PUSH_SECRET}"},
            "poll": {"interval": "5m"},
            "targets": {"family": {"channel_id": "345678901234567890"}},
            "rules": [{"name": "kids", "people": {"any": ["Alice"]}, "targets": ["family"]}],
            "posts": [
                {
                    "name": "on-this-day",
                    "kind": "memories",
                    "cron": "0 9 * * *",
                    "targets": ["family"],
                    "accounts": ["dad", "mum"],
                },
            ],
        }
    }
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    result = run_template(helm, "-f", str(path))
    assert result.returncode == 0, result.stderr
    manifests = [d for d in yaml.safe_load_all(result.stdout) if d]
    config = config_file(manifests)
    assert config["posts"][0]["name"] == "on-this-day"
    assert config["timezone"] == "Europe/Paris"
    assert "api_key" not in config["immich"]  # the accounts hold the keys
    assert config["push"] == {"listen": "0.0.0.0:9188", "secret": "${IMMICH_PUSH_SECRET}"}
    assert "push" in [p["name"] for p in container(manifests)["ports"]]  # config.push turns it on
    validate_against_sidecar_schema(config, tmp_path)


@pytest.mark.parametrize(
    ("args", "key", "problem"),
    [
        (["--set", "config.poll.lookbak=2m"], "/config/poll", "'lookbak' not allowed"),
        (["--set-string", "config.poll.interval=5 minutes"], "/config/poll/interval", "5 minutes"),
        (["--set-string", "config.poll.interval=0s"], "/config/poll/interval", "'not' failed"),
        (["--set", "config.timezon=UTC"], "/config", "'timezon' not allowed"),
        (["--set-string", "config.discord.members.Alice=Bob"], "/config/discord/members/Alice", ""),
        (["--set", "config.posts[0].name=p"], "/config/posts/0", "missing properties"),
        (["--set-string", "config.discord.claims=closed"], "/config/discord/claims", ""),
    ],
    ids=["typo", "duration", "zero-interval", "top-level-typo", "snowflake", "post", "enum"],
)
def test_the_chart_refuses_what_the_sidecar_refuses_naming_the_key(
    helm: str, args: list[str], key: str, problem: str
) -> None:
    result = run_template(helm, *args)
    assert result.returncode != 0
    assert f"at '{key}'" in result.stderr
    assert problem in result.stderr


def test_dashboard_config_map_is_labelled_for_grafana(render: Render) -> None:
    cm = one(render(grafanaDashboard__enabled="true"), "ConfigMap", "-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    (content,) = cm["data"].values()
    assert json.loads(content)["uid"] == "immich-discord-sidecar"


def test_grafana_alerts_use_the_configured_data_source(render: Render) -> None:
    cm = one(
        render(grafanaAlerts__enabled="true", grafanaAlerts__datasourceUid="abc123"),
        "ConfigMap",
        "-grafana-alerts",
    )
    assert cm["metadata"]["labels"]["grafana_alert"] == "1"
    (content,) = cm["data"].values()
    provisioning = yaml.safe_load(content)
    uids = {d["datasourceUid"] for r in provisioning["groups"][0]["rules"] for d in r["data"]}
    assert uids == {"abc123", "__expr__"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=2"], "replicaCount"),
        (["--set", "persistance.enabled=false"], "persistance"),
        (["--set", "hotReload=yes"], "hotReload"),
        (["--set", "service.port=http"], "port"),
        (["--set", "config.rulez[0].name=x"], "rulez"),
        (["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
        (["--set", "logFormat=xml"], "logFormat"),
    ],
    ids=[
        "replica-count",
        "typo",
        "bool-as-string",
        "port-as-string",
        "config-typo",
        "enum",
        "log-format",
    ],
)
def test_values_schema_rejects_unknown_keys_and_wrong_types(
    helm: str, args: list[str], message: str
) -> None:
    result = run_template(helm, *args)
    assert result.returncode != 0
    assert message in result.stderr


def test_notes_explain_how_to_check_it_works(helm: str) -> None:
    result = subprocess.run(
        [helm, "install", "photos", str(CHART), "--dry-run=client", "--namespace", "immich"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    for needle in (
        "port-forward svc/photos-immich-discord-sidecar 9187:9187",
        "/readyz",
        "/metrics",
        "logs deploy/photos-immich-discord-sidecar",
        "no Secret is configured",
    ):
        assert needle in notes


def test_the_push_port_is_exposed_only_when_push_is_enabled(render: Render, tmp_path: Path) -> None:
    def ports(manifests: list[Manifest]) -> tuple[list[str], list[str]]:
        service = one(manifests, "Service")["spec"]["ports"]
        return [p["name"] for p in container(manifests)["ports"]], [p["name"] for p in service]

    off = render()
    assert ports(off) == (["metrics"], ["metrics"])
    assert "push" not in config_file(off)
    on = render(push__enabled="true")
    assert ports(on) == (["metrics", "push"], ["metrics", "push"])
    config = config_file(on)
    assert config["push"] == {"listen": "0.0.0.0:9188", "secret": "${IMMICH_PUSH_SECRET}"}
    validate_against_sidecar_schema(config, tmp_path)
