"""The README's laptop quick start, followed literally on a copy of the repository (its tracked
files, as a fresh clone has them) against the fake Immich: it prints a notification.

The lines are read from README.md, not repeated here; only the values of the ``export`` lines
are replaced (the fake Immich's address and key). ``make venv`` finds the virtual environment
ready: the copy's ``.venv`` is a stamp plus a link to this checkout's ``.venv/bin``, and the test
checks with ``make -q`` that make would build nothing (it never runs pip).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e_harness import REPO, WAIT_LIMIT
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e
HEADING = "### Try it against your Immich, on your laptop"
NEW_UPLOAD_SECONDS = 15.0  # the README promises 5 to 10 seconds


def quickstart_lines() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(HEADING) :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no ```sh block after the quick start heading"
    return block[1].splitlines()


def with_values(lines: list[str], values: dict[str, str]) -> list[str]:
    """Each ``export NAME=value  # comment`` line with the value replaced; the rest as written."""
    out = []
    for line in lines:
        m = re.match(r"export (\w+)=(\S+)(.*)$", line)
        if m:
            assert m[1] in values, f"the quick start exports {m[1]}, which the test does not know"
            line = f"export {m[1]}={values[m[1]]}{m[3]}"
        out.append(line)
    return out


def fresh_copy(into: Path) -> Path:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True)
    if listing.returncode != 0:
        pytest.skip("not a git checkout: the tracked files are unknown")
    tracked = listing.stdout.decode().split("\0")
    for name in filter(None, tracked):
        source = REPO / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    venv = into / ".venv"
    venv.mkdir()
    (venv / "bin").symlink_to(REPO / ".venv" / "bin")
    (venv / ".installed").touch()
    return into


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_the_quick_start_block_exports_every_variable_the_laptop_config_reads() -> None:
    exported = {m[1] for line in quickstart_lines() if (m := re.match(r"export (\w+)=", line))}
    config = (REPO / "config" / "config.local.yaml").read_text()
    active = "\n".join(line.split("#")[0] for line in config.splitlines())
    assert set(re.findall(r"\$\{(\w+)", active)) == exported


@pytest.mark.serial  # the laptop config's metrics port, 9187, as the demo
async def test_the_readme_quick_start_prints_a_notification(tmp_path: Path) -> None:
    if not port_free(9187):
        pytest.skip("port 9187 (the laptop config's metrics.listen) is in use on this machine")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = fresh_copy(tmp_path / "clone")
    assert subprocess.run(["make", "-q", "venv"], cwd=repo).returncode == 0, (
        "make venv would rebuild the virtual environment in the copy"
    )
    async with FakeImmich() as immich:
        asset = immich.add_asset(created_at=datetime.now(UTC) - timedelta(minutes=10))
        script = "\n".join(
            with_values(
                quickstart_lines(), {"IMMICH_URL": immich.url, "IMMICH_API_KEY": immich.api_key}
            )
        )
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("IMMICH_", "SIDECAR_", "DISCORD_"))
        }
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-e",
            "-c",
            script,
            cwd=repo,
            env=env,
            start_new_session=True,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        lines: list[str] = []

        async def read_until(asset_id: str) -> None:
            assert proc.stdout is not None
            while not any(asset_id in line and line.startswith("{") for line in lines):
                raw = await proc.stdout.readline()
                if not raw:
                    break
                lines.append(raw.decode().rstrip("\n"))

        try:
            async with asyncio.timeout(WAIT_LIMIT * 2):
                await read_until(asset)  # the last hour's photo, shown at the first start
            # A photo uploaded while it runs shows within seconds, not after minutes (a bound
            # on behaviour: the config polls every 5s and decides after 5s, not a benchmark).
            fresh = immich.add_asset(created_at=datetime.now(UTC))
            async with asyncio.timeout(NEW_UPLOAD_SECONDS):
                await read_until(fresh)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            _, err = await proc.communicate()
    notifications = [json.loads(line) for line in lines if line.startswith("{")]
    assert [n["asset_id"] for n in notifications] == [asset, fresh], (lines, err.decode())
    assert any(line.startswith("all ") and line.endswith(" checks passed") for line in lines)
    assert (repo / "data" / "state.db").exists()


def test_the_install_without_a_clone_writes_a_config_like_the_laptop_one(tmp_path: Path) -> None:
    """The install page's pipx section writes its config with a heredoc: it loads, and it polls
    like config/config.local.yaml (so that both promise the same seconds)."""
    from sidecar.config.loader import load_settings

    page = (REPO / "docs" / "install.md").read_text()
    section = page[page.index("## Install without a clone") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    assert "pipx install immich-discord-sidecar" in block[1]
    heredoc = re.search(r"cat > config\.yaml <<'EOF'\n(.*?)\nEOF\n", block[1], re.DOTALL)
    assert heredoc is not None, "no config heredoc in the pipx section"
    (tmp_path / "config.yaml").write_text(heredoc[1] + "\n")
    env = {"IMMICH_API_KEY": "k"}
    short = load_settings(tmp_path / "config.yaml", environ=env)
    laptop = load_settings(REPO / "config" / "config.local.yaml", environ=env)
    assert short.poll == laptop.poll
    assert short.immich.url == laptop.immich.url == "http://localhost:2283"
    assert [r.name for r in short.rules] == [r.name for r in laptop.rules]
