"""deploy/docker-compose.yml, the service to add to Immich's own compose project: valid against
the Compose Specification schema (the copy check-jsonschema ships), referring only to files that
exist, and set up as the image needs (read-only, uid 10001, state volume, health check)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.settings import load_settings
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
    return subprocess.run([checker, "--builtin-schema", "vendor.compose-spec", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


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


def test_refers_only_to_files_that_exist(
    service: dict[str, Any], compose: dict[str, Any]
) -> None:
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
