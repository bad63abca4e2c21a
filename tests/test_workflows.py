"""The GitHub Actions workflows: actionlint-clean, CI runs what `.ci/run` runs, and the release
publishes the image the chart, the compose file and the docs name, for amd64 and arm64."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
CHART = ROOT / "helm" / "immich-discord-sidecar"


def actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("actionlint")
    shellcheck = require_tool("shellcheck")  # actionlint checks run: scripts with it
    return subprocess.run(
        [tool, "-oneline", f"-shellcheck={shellcheck}", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load(name: str) -> dict[Any, Any]:
    data: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    return data


def steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return found


def step_using(workflow: dict[Any, Any], job: str, action: str) -> dict[str, Any]:
    [step] = [s for s in steps(workflow, job) if s.get("uses", "").startswith(action + "@")]
    return step


def test_actionlint_finds_nothing() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} == {"ci.yml", "release.yml"}
    result = actionlint(*files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = WORKFLOWS / "release.yml"
    text = broken.read_text().replace("steps.meta.outputs.tags", "steps.metadata.outputs.tags")
    copy = tmp_path / "release.yml"
    copy.write_text(text)
    result = actionlint(copy)
    assert result.returncode != 0 and "metadata" in result.stdout, result.stdout


def test_ci_runs_dot_ci_run() -> None:
    ci = load("ci.yml")
    runs = " ".join(s.get("run", "") for s in steps(ci, "test"))
    assert "bash .ci/run" in runs
    assert "workflow_call" in ci[True]  # yaml 1.1 reads the key "on" as True


def test_release_publishes_both_architectures_on_a_version_tag() -> None:
    release = load("release.yml")
    assert list(release[True]) == ["push"] and "tags" in release[True]["push"]
    assert release["jobs"]["image"]["needs"] == "test"
    build = step_using(release, "image", "docker/build-push-action")["with"]
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert build["push"] is True
    tags = step_using(release, "image", "docker/metadata-action")["with"]["tags"]
    assert "type=semver,pattern={{version}}" in tags
    chart_script = " ".join(s.get("run", "") for s in steps(release, "chart"))
    assert "helm push" in chart_script and "oci://ghcr.io/" in chart_script


def test_the_published_image_is_the_one_chart_and_readme_name() -> None:
    release = load("release.yml")
    images = step_using(release, "image", "docker/metadata-action")["with"]["images"]
    assert images == "ghcr.io/${{ github.repository }}"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    repository = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)", chart["sources"][0])
    assert repository, chart["sources"]
    published = f"ghcr.io/{repository.group(1)}".lower()
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["image"]["repository"] == published
    docs = (ROOT / "docs" / "docker.md").read_text()
    assert f"{published}:" in docs
    assert "docker build -t immich-discord-sidecar ." in docs


@pytest.mark.parametrize("name", ["ci.yml", "release.yml"])
def test_every_job_has_a_timeout_and_least_privilege(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job_name, job in workflow["jobs"].items():
        if "uses" in job:  # a called workflow brings its own
            continue
        assert "timeout-minutes" in job, job_name


def test_release_publishes_the_package_to_pypi_by_trusted_publishing() -> None:
    """`pipx install immich-discord-sidecar` (docs/install.md) needs the package on PyPI: built once
    the tag matched pyproject.toml, uploaded with the job's OIDC token, never a stored one."""
    release = load("release.yml")
    jobs = release["jobs"]
    assert jobs["package"]["needs"] == "image"  # the image job checks the tag's version
    build = " ".join(s.get("run", "") for s in steps(release, "package"))
    assert "python -m build" in build
    pypi = jobs["pypi"]
    assert pypi["needs"] == "package"
    assert pypi["permissions"] == {"id-token": "write"}
    assert pypi["environment"]["name"] == "pypi"
    publish = step_using(release, "pypi", "pypa/gh-action-pypi-publish")
    assert publish["uses"] == "pypa/gh-action-pypi-publish@release/v1"
    assert "password" not in publish.get("with", {})  # trusted publishing: no token
    name = re.search(r'^name = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert name is not None and pypi["environment"]["url"].endswith("/p/" + name[1])
    assert f"pipx install {name[1]}" in (ROOT / "docs" / "install.md").read_text()
