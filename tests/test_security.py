"""Security checks: no secret in any log line (at DEBUG), metric, health answer or state file;
uploads refused outside the allow-lists (nobody by default); the Helm chart's pods meet the
restricted Pod Security Standard."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.app import Sidecar
from sidecar.discord.uploads.checks import Named, upload_refusal
from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich

API_KEY = "immich-key-SECRET-9f8e7d6c"
HOOK_TOKEN = "hook-token-SECRET-1a2b3c4d"
RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout, hook]
    """)


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [s for s in secrets if s in text]


def state_bytes(state: Path) -> bytes:
    return b"".join(p.read_bytes() for p in state.parent.glob(state.name + "*"))


@pytest.mark.e2e
async def test_process_at_debug_leaks_no_secret_anywhere(tmp_path: Path) -> None:
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        async with FakeImmich(api_key=API_KEY) as immich:
            alice = immich.add_person("Alice")
            immich_url = immich.url
            hook = f"{discord.base_url}/api/v10/webhooks/77/{HOOK_TOKEN}"
            config, state, port = tmp_path / "config.yaml", tmp_path / "state.db", free_port()
            write_config(
                config,
                immich_url=immich.url,
                state=state,
                rules=RULES,
                metrics_port=port,
                settle="0s",
                targets="stdout: {console: true}\nhook: {webhook_url: '${HOOK}'}",
            )
            process = SidecarProcess(
                config,
                {"IMMICH_API_KEY": API_KEY, "HOOK": hook, "SIDECAR_LOG_LEVEL": "DEBUG"},
                port,
            )
            await process.start()
            try:
                asset = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
                await process.wait_for_delivery(asset)
                await process.wait_until(
                    lambda: bool(discord.interaction_messages), "the webhook post"
                )
                async with httpx.AsyncClient() as http:
                    answers = {
                        path: (await http.get(f"http://127.0.0.1:{port}{path}")).text
                        for path in ("/metrics", "/healthz", "/readyz")
                    }
            finally:
                assert await process.stop() == 0
    finally:
        await discord.stop()

    secrets = [API_KEY, HOOK_TOKEN, hook]
    assert any(" DEBUG " in line for line in process.stderr), "not running at DEBUG"
    for line in process.stdout + process.stderr:
        assert not leaks(line, secrets), line
    for path, body in answers.items():
        assert not leaks(body, secrets), path
        assert "webhooks/" not in body and immich_url not in body, path
    assert "immich_sidecar_poll_runs_total" in answers["/metrics"]
    stored = state_bytes(state)
    assert stored and asset.encode() in stored  # really the state file
    for secret in secrets:
        assert secret.encode() not in stored


@pytest.mark.e2e
async def test_in_process_with_the_bot_at_debug_leaks_no_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = fd.TOKEN
    discord = fd.FakeDiscord()
    await discord.start()
    stdout = io.StringIO()
    caplog.set_level(logging.DEBUG)
    try:
        with discord.patched():
            async with FakeImmich(api_key=API_KEY) as immich:
                alice = immich.add_person("Alice")
                monkeypatch.setenv("IMMICH_API_KEY", API_KEY)
                monkeypatch.setenv("DISCORD_TOKEN", token)
                config, state, port = tmp_path / "c.yaml", tmp_path / "state.db", free_port()
                write_config(
                    config,
                    immich_url=immich.url,
                    state=state,
                    metrics_port=port,
                    rules=RULES.replace("[stdout, hook]", "[discord]"),
                    targets=f'discord: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}',
                    extra="discord:\n  token: ${DISCORD_TOKEN}\n",
                    settle="0s",
                )
                sidecar = Sidecar(config, stdout=stdout)
                await sidecar.start()
                try:
                    asset = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
                    for _ in range(750):  # bounded: 15 s
                        if discord.messages_in(fd.PHOTOS_CHANNEL):
                            break
                        await asyncio.sleep(0.02)
                    metrics = sidecar.metrics.registry
                finally:
                    await sidecar.stop()
    finally:
        await discord.stop()
    assert discord.messages_in(fd.PHOTOS_CHANNEL), "the bot never posted"
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        assert not leaks(line, [API_KEY, token]), line
    assert not leaks(stdout.getvalue(), [API_KEY, token])
    from prometheus_client import generate_latest

    exposed = generate_latest(metrics).decode()
    assert not leaks(exposed, [API_KEY, token])
    assert token.encode() not in state_bytes(state) and API_KEY.encode() not in state_bytes(state)
    assert asset.encode() in state_bytes(state)


# ------------------------------------------------------------------------- upload allow-lists

ADMIN, UPLOADER = Named(1, "admin"), Named(2, "uploaders")
HERE, ELSEWHERE = Named(10, "uploads"), Named(11, "general")


@pytest.mark.parametrize(
    ("roles", "channels", "caller", "channel", "allowed"),
    [
        ((), (), [ADMIN, UPLOADER], HERE, False),  # the safe default: nobody
        (("", " "), (), [ADMIN], HERE, False),  # blank entries grant nothing
        (("uploaders",), (), [], HERE, False),
        (("uploaders",), (), [ADMIN], HERE, False),
        (("uploaders",), ("uploads",), [UPLOADER], ELSEWHERE, False),
        (("uploaders",), ("uploads",), [UPLOADER], None, False),  # a DM has no channel
        (("uploaders",), ("uploads",), [UPLOADER], HERE, True),
        (("everyone",), (), [Named(3, "Everyone")], HERE, True),  # only a real role by that name
    ],
)
def test_upload_allow_lists(roles, channels, caller, channel, allowed):
    assert (upload_refusal(roles, channels, caller, channel) is None) is allowed


def test_schema_documents_the_empty_role_list_safe_default():
    schema = json.loads((Path(__file__).parents[1] / "sidecar" / "config.schema.json").read_text())
    upload = schema["properties"]["discord"]["properties"]["commands"]["properties"]["upload"]
    description = upload["properties"]["allowed_roles"]["description"]
    assert "everyone" not in description.lower() or "nobody" in description.lower(), description


# ------------------------------------------------------------------------- Helm: restricted PSS

ALLOWED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
POD_KINDS = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


def pod_specs(manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for manifest in manifests:
        if manifest["kind"] in POD_KINDS:
            node = manifest
            for key in POD_KINDS[manifest["kind"]]:
                node = node[key]
            found.append((f"{manifest['kind']}/{manifest['metadata']['name']}", node["spec"]))
    return found


def check_restricted(where: str, pod: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    pod_sc = pod.get("securityContext") or {}
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(flag):
            problems.append(f"{where}: {flag}")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"{where}: volume {volume['name']} of type {kinds}")
    if pod_sc.get("runAsUser") == 0:
        problems.append(f"{where}: pod runAsUser 0")
    if pod_sc.get("sysctls"):
        problems.append(f"{where}: sysctls")
    containers = [
        *pod.get("initContainers", []),
        *pod.get("containers", []),
        *pod.get("ephemeralContainers", []),
    ]
    assert containers, where
    for c in containers:
        sc = c.get("securityContext") or {}
        name = f"{where}/{c['name']}"
        if sc.get("privileged"):
            problems.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {caps['add']}")
        if (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))) is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.append(f"{name}: runs as user 0")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile {seccomp}")
        if sc.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
        for port in c.get("ports") or []:
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort")
        selinux = sc.get("seLinuxOptions") or {}
        if selinux.get("user") or selinux.get("role"):
            problems.append(f"{name}: seLinuxOptions user/role")
    return problems


def test_every_rendered_pod_meets_the_restricted_standard() -> None:
    import yaml

    from tests.test_helm_chart import CI_VALUES, run_template
    from tests.toolcheck import require_tool

    helm = require_tool("helm")
    checked = 0
    for args in [
        (),
        *(("-f", str(f)) for f in CI_VALUES),
        ("--set", "serviceMonitor.enabled=true"),
    ]:
        result = run_template(helm, *args)
        assert result.returncode == 0, result.stderr
        manifests = [d for d in yaml.safe_load_all(result.stdout) if d]
        pods = pod_specs(manifests)
        assert pods, args
        for where, pod in pods:
            assert check_restricted(where, pod) == [], args
            checked += 1
    assert checked >= 1


def test_the_checker_catches_a_bad_pod() -> None:
    bad = {
        "hostNetwork": True,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [
            {
                "name": "c",
                "securityContext": {"privileged": True, "capabilities": {"add": ["SYS_ADMIN"]}},
                "ports": [{"containerPort": 80, "hostPort": 80}],
            }
        ],
    }
    problems = check_restricted("Pod/x", bad)
    for fragment in (
        "hostNetwork",
        "hostPath",
        "privileged",
        "allowPrivilegeEscalation",
        "drop ALL",
        "SYS_ADMIN",
        "runAsNonRoot",
        "seccompProfile",
        "hostPort",
    ):
        assert any(fragment in p for p in problems), fragment
