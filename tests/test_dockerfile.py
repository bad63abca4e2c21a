"""The container image, without a Docker engine: the Dockerfile is parsed, linted with hadolint,
and its build steps are replayed in a clean virtual environment to prove the image would start."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.toolcheck import require_tool

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLE_CONFIG = ROOT / "config" / "config.example.yaml"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_stages(text: str) -> list[list[Instruction]]:
    """Instructions per build stage; continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[Instruction]] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    return stages


def the(stage: list[Instruction], keyword: str) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


@pytest.fixture(scope="module")
def stages() -> list[list[Instruction]]:
    return parse_stages(DOCKERFILE.read_text())


def test_is_multi_stage_on_a_pinned_slim_python(stages: list[list[Instruction]]) -> None:
    assert len(stages) >= 2
    for stage in stages:
        image = the(stage, "FROM")[0].split()[0]
        assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", image), image
    final = stages[-1]
    assert any(a.startswith("--from=") for a in the(final, "COPY")), "final stage copies the venv"
    assert not any("pip install" in a for a in the(final, "RUN")), "no installs in the final stage"


def test_final_stage_runs_as_a_numeric_non_root_user(stages: list[list[Instruction]]) -> None:
    users = the(stages[-1], "USER")
    assert users, "the final stage sets USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000


def test_final_stage_entrypoint_and_runtime_settings(stages: list[list[Instruction]]) -> None:
    final = stages[-1]
    assert json.loads(the(final, "ENTRYPOINT")[-1]) == ["immich-sidecar"]
    assert json.loads(the(final, "CMD")[-1]) == ["run"]
    assert the(final, "STOPSIGNAL") == ["SIGTERM"]
    assert "9187" in " ".join(the(final, "EXPOSE")).split()
    env = " ".join(the(final, "ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    assert "SIDECAR_CONFIG=/config/config.yaml" in env
    assert "/opt/venv/bin" in env


def test_healthcheck_asks_the_address_the_config_listens_on(
    stages: list[list[Instruction]],
) -> None:
    healthcheck = the(stages[-1], "HEALTHCHECK")
    assert len(healthcheck) == 1
    command = json.loads(healthcheck[0].split("CMD", 1)[1])
    # The subcommand reads metrics.listen from $SIDECAR_CONFIG; a fixed URL would report a
    # sidecar listening elsewhere as unhealthy (tests/test_healthcheck.py, and the image itself
    # in tests/test_container_image.py).
    assert command == ["immich-sidecar", "healthcheck"]
    assert "curl" not in healthcheck[0] and "wget" not in healthcheck[0]
    assert "9187" not in healthcheck[0] and "HEALTHCHECK_URL" not in DOCKERFILE.read_text()


def test_oci_labels(stages: list[list[Instruction]]) -> None:
    labels = " ".join(the(stages[-1], "LABEL"))
    for key in ("title", "description", "version", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents wins; `*` stays
    within one path segment, `**` crosses them."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for raw in patterns:
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(?:.*/)?").replace(r"\*\*", ".*")
        regex = regex.replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    patterns = (ROOT / ".dockerignore").read_text().splitlines()
    for private in (
        "config/config.yaml",
        ".venv/bin/python",
        ".git/config",
        "data/state.db",
        ".tools/bin/helm",
        "tests/test_dockerfile.py",
        "sidecar/__pycache__/x.pyc",
    ):
        assert dockerignore_excludes(patterns, private), f"{private} would reach the build"
    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "LICENSE",
        "sidecar/cli.py",
        "sidecar/config.schema.json",
        "sidecar/immich/models.py",
    ):
        assert not dockerignore_excludes(patterns, needed), f"{needed} is needed by the build"


def test_hadolint_is_clean() -> None:
    hadolint = require_tool("hadolint")
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def replay_copy(args: str, workdir: Path) -> None:
    """COPY as Docker does it: files into a directory destination, a directory's contents."""
    parts = shlex.split(args)
    assert not any(p.startswith("--") for p in parts), f"unexpected COPY flags in build: {args}"
    *sources, dest = parts
    target = workdir / dest
    for source in sources:
        src = ROOT / source
        assert src.exists(), f"COPY {source}: missing from the repository"
        if src.is_dir():
            shutil.copytree(
                src,
                target,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        elif dest.endswith("/") or len(sources) > 1:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / src.name)
        else:
            shutil.copy2(src, target)


@pytest.mark.slow
def test_build_steps_replayed_in_a_clean_venv_give_a_working_cli(
    stages: list[list[Instruction]], tmp_path: Path
) -> None:
    build = stages[0]
    venv = tmp_path / "venv"
    src = tmp_path / "src"
    src.mkdir()
    workdirs = the(build, "WORKDIR")
    assert workdirs, "the build stage sets a WORKDIR"
    container_workdir = workdirs[0]

    def translate(text: str) -> str:
        return text.replace("/opt/venv", str(venv)).replace(container_workdir, str(src))

    # The interpreter of this test stands in for the image's python; the clean venv comes first.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{venv}/bin:{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for step in build[1:]:
        if step.keyword == "COPY":
            replay_copy(step.args, src)
        elif step.keyword == "RUN":
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", translate(step.args)],
                cwd=src,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"RUN {step.args}\n{result.stdout}\n{result.stderr}"

    cli = venv / "bin" / "immich-sidecar"
    assert cli.is_file(), "the entry point script was not installed"
    list_names = (
        "import importlib.metadata as m; print([d.metadata['Name'] for d in m.distributions()])"
    )
    installed = subprocess.run(
        [venv / "bin" / "python", "-c", list_names], capture_output=True, text=True, check=True
    ).stdout
    names = {name.lower().replace("_", "-") for name in ast.literal_eval(installed)}
    assert {"discord.py", "httpx", "prometheus-client"} <= names
    assert not names & {"pytest", "mypy", "ruff", "respx"}, "test tools leaked into the image"
    assert not names & {"pip", "setuptools"}, "build tools left in the image's venv"

    # Run the way the image runs: no working copy on sys.path, no writable byte-code.
    run_env = {
        "PATH": f"{venv}/bin:/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(tmp_path),
    }
    schema = subprocess.run(
        [cli, "schema"],
        cwd=tmp_path,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["type"] == "object"

    if not EXAMPLE_CONFIG.is_file():
        pytest.fail(f"{EXAMPLE_CONFIG} is missing: the image cannot be checked against it")
    variables = set(re.findall(r"\$\{([A-Z0-9_]+)\}", EXAMPLE_CONFIG.read_text()))
    secrets = {name: f"dummy-{name.lower()}" for name in variables}
    for name in variables:
        if name.endswith("URL"):
            secrets[name] = "https://discord.com/api/webhooks/1/dummy"
    check = subprocess.run(
        [cli, "check-config", "-c", str(EXAMPLE_CONFIG)],
        cwd=tmp_path,
        env=run_env | secrets,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Traceback" not in check.stderr
