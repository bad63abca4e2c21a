"""deploy/docker-compose.yml, the service to add to Immich's own compose project: valid against
the Compose Specification schema (the copy check-jsonschema ships), referring only to files that
exist, and set up as the image needs (read-only, uid 10001, state volume, health check); and run
with podman-compose beside a stand-in of Immich's compose project."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
import tomllib
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.config.loader import load_settings
from tests.podman import WAIT_LIMIT, podman, require_image, run
from tests.toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SERVICE = "immich-discord-sidecar"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"][SERVICE]
    return found


def schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    checker = require_tool("check-jsonschema")
    return subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_valid_against_the_compose_specification_schema() -> None:
    result = schema_check(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE.read_text().replace("read_only: true", "readonly: true"))
    result = schema_check(broken)
    assert result.returncode != 0 and "readonly" in result.stdout, result.stdout


def referenced_files(service: dict[str, Any], compose: dict[str, Any]) -> list[str]:
    """Every host path the file names: env files, bind-mount sources, secret and config files,
    build contexts."""
    paths = [e if isinstance(e, str) else e["path"] for e in service.get("env_file", [])]
    for volume in service.get("volumes", []):
        source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith((".", "/")):
            paths.append(source)
    for section in ("secrets", "configs"):
        paths += [spec["file"] for spec in (compose.get(section) or {}).values() if "file" in spec]
    build = service.get("build")
    if build:
        paths.append(build if isinstance(build, str) else build.get("context", "."))
    return paths


def test_refers_only_to_files_that_exist(service: dict[str, Any], compose: dict[str, Any]) -> None:
    paths = referenced_files(service, compose)
    assert "./immich-discord-sidecar/secrets.env" in paths
    assert "./immich-discord-sidecar/config" in paths
    missing = [p for p in paths if not (DEPLOY / p).exists()]
    assert not missing, f"deploy/docker-compose.yml names files that deploy/ lacks: {missing}"


def test_runs_as_the_image_expects(service: dict[str, Any], compose: dict[str, Any]) -> None:
    assert service["depends_on"] == ["immich-server"]  # the service in Immich's compose file
    assert service["restart"] == "unless-stopped"
    assert service["read_only"] is True
    assert service["tmpfs"] == ["/tmp"]
    assert str(service["user"]).split(":")[0] == "10001"
    volumes = dict(v.split(":", 1) for v in service["volumes"])
    state = volumes["immich-discord-sidecar-state"]
    assert state == "/data" and "immich-discord-sidecar-state" in compose["volumes"]
    assert volumes["./immich-discord-sidecar/config"] == "/config:ro"
    assert service["healthcheck"]["test"] == ["CMD", "immich-sidecar", "healthcheck"]
    assert "networks" not in service, "the default network of Immich's project is the point"


def test_image_is_the_one_the_release_publishes_at_this_version(service: dict[str, Any]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    values = yaml.safe_load((ROOT / "helm" / "immich-discord-sidecar" / "values.yaml").read_text())
    default = re.fullmatch(r"\$\{SIDECAR_IMAGE:-(.+)\}", service["image"])
    assert default, service["image"]
    assert default.group(1) == f"{values['image']['repository']}:{version}"


def test_the_shipped_config_passes_with_the_variables_secrets_env_names(tmp_path: Path) -> None:
    env_file = DEPLOY / "immich-discord-sidecar" / "secrets.env"
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", env_file.read_text(), flags=re.MULTILINE)
    config = DEPLOY / "immich-discord-sidecar" / "config" / "config.yaml"
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", config.read_text()))
    assert used <= set(names), f"config.yaml uses variables secrets.env does not list: {used}"
    settings = load_settings(config, {name: "placeholder" for name in names})
    assert settings.immich.url.startswith("http://immich-server:2283")
    assert str(settings.state.path) == "/data/state.db"


# Immich's own compose project, its server played by the fake Immich (run from the sidecar's
# image, which has Python and aiohttp; the fake's code is mounted from this repository).
IMMICH_STAND_IN = """\
services:
  immich-server:
    image: {image}
    entrypoint: [python, -m, tests.fakes.fake_immich, --host, 0.0.0.0, --port, "2283",
                 --api-key, {key}]
    working_dir: /repo
    volumes:
      - {tests}:/repo/tests:ro
    tmpfs:
      - /data
"""
UPLOAD = """\
import urllib.request
request = urllib.request.Request("http://127.0.0.1:2283/_fake/assets", data=b"{}",
                                 headers={"Content-Type": "application/json"})
print(urllib.request.urlopen(request, timeout=10).read().decode())
"""


@pytest.mark.container
@pytest.mark.slow
async def test_the_service_runs_in_immichs_compose_project(tmp_path: Path) -> None:
    image = require_image("podman-compose")
    key = "compose-test-key"
    immich_app = tmp_path / "immich-app"
    immich_app.mkdir()
    # README step 1: the two files beside Immich's docker-compose.yml.
    shutil.copy(COMPOSE, immich_app / "immich-discord-sidecar.yml")
    shutil.copytree(DEPLOY / "immich-discord-sidecar", immich_app / "immich-discord-sidecar")
    (immich_app / "docker-compose.yml").write_text(
        IMMICH_STAND_IN.format(image=image, key=key, tests=ROOT / "tests")
    )
    # Steps 2 and 3: the key in secrets.env, the image named in Immich's .env; a short poll
    # interval only to keep the test short.
    (immich_app / ".env").write_text(f"SIDECAR_IMAGE={image}\n")
    secrets = immich_app / "immich-discord-sidecar" / "secrets.env"
    secrets.write_text(secrets.read_text().replace("IMMICH_API_KEY=\n", f"IMMICH_API_KEY={key}\n"))
    config = immich_app / "immich-discord-sidecar" / "config" / "config.yaml"
    config.write_text(config.read_text() + "poll: {interval: 1s, settle: 1s}\n")
    config.parent.chmod(0o755)
    config.chmod(0o644)

    project = f"immich-sidecar-test-{uuid.uuid4().hex[:8]}"
    compose = [
        "podman-compose",
        "-p",
        project,
        "-f",
        "docker-compose.yml",
        "-f",
        "immich-discord-sidecar.yml",
    ]
    sidecar = "immich_discord_sidecar"  # container_name in deploy/docker-compose.yml
    try:
        code, out, err = await run(*compose, "up", "-d", cwd=str(immich_app), timeout=120)
        assert code == 0, out[-3000:] + err[-3000:]
        await wait_for_log(sidecar, "started")
        code, out, err = await podman("exec", f"{project}_immich-server_1", "python", "-c", UPLOAD)
        assert code == 0, out + err
        asset_id = json.loads(out)["id"]
        # The asset reached the sidecar through http://immich-server:2283 on the project's network.
        await wait_for_log(sidecar, f'"asset_id": "{asset_id}"', stream=1)
        code, out, err = await podman("healthcheck", "run", sidecar)
        assert code == 0, out + err
        _, settings, _ = await podman(
            "inspect", "--format", "{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}", sidecar
        )
        assert settings.split() == ["true", "10001:10001"]
    finally:
        await run(*compose, "down", "-v", cwd=str(immich_app), timeout=120)
        await podman("network", "rm", "--force", f"{project}_default")


async def wait_for_log(container: str, text: str, stream: int = 2) -> None:
    """Until ``text`` is in the container's stdout (1) or stderr (2)."""
    started = time.monotonic()
    while True:
        _, out, err = await podman("logs", container)
        if text in (out if stream == 1 else err):
            return
        if time.monotonic() - started > WAIT_LIMIT:
            raise AssertionError(f"{container}: no {text!r} in its log:\n{err[-3000:]}")
        await asyncio.sleep(0.25)


def test_the_push_port_is_exposed_only_when_push_is_uncommented(
    service: dict[str, Any], tmp_path: Path
) -> None:
    assert "expose" not in service and "ports" not in service  # off by default
    compose_text = COMPOSE.read_text()
    assert '# expose:\n    #   - "9188"' in compose_text
    env_file = (DEPLOY / "immich-discord-sidecar" / "secrets.env").read_text()
    assert "# IMMICH_PUSH_SECRET=" in env_file
    shipped = DEPLOY / "immich-discord-sidecar" / "config" / "config.yaml"
    assert load_settings(shipped, {"IMMICH_API_KEY": "placeholder"}).push is None
    enabled = shipped.read_text().replace("# push:\n#   listen", "push:\n  listen")
    enabled = enabled.replace(
        "#   secret: ${IMMICH_PUSH_SECRET}", "  secret: ${IMMICH_PUSH_SECRET}"
    )
    path = tmp_path / "config.yaml"
    path.write_text(enabled)
    env = {"IMMICH_API_KEY": "placeholder", "IMMICH_PUSH_SECRET": "0123456789abcdef0123"}
    push = load_settings(path, env).push
    assert push is not None and (push.host, push.port) == ("0.0.0.0", 9188)
    exposed = compose_text.replace('# expose:\n    #   - "9188"', 'expose:\n      - "9188"')
    service_after = yaml.safe_load(exposed)["services"][SERVICE]
    assert service_after["expose"] == ["9188"]
