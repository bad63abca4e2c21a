"""The container image, built from the Dockerfile by `.ci/build-image` and run with podman as a
user runs it: read-only root filesystem, a tmpfs on /tmp, uid 10001, the config folder mounted
read-only, the state on a named volume, against the fake Immich on the host network.
Skipped with the reason without podman or the image; failed in CI (tests/podman.py)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SAID
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.podman import WAIT_LIMIT, podman, require_image

pytestmark = [pytest.mark.container, pytest.mark.slow]

STOP_GRACE = 20  # seconds `podman stop` waits before it kills: a kill would exit 137, not 0
RULES = textwrap.dedent("""\
    - name: kids
      people: {any: [Alice]}
      targets: [stdout]
    """)


@pytest.fixture(scope="module")
def image() -> str:
    return require_image()


@pytest.fixture
def say(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Reports a passed check in CI's log, after the test (tests/conftest.py prints it, also
    when an xdist worker ran the test)."""

    def say(line: str) -> None:
        request.node.user_properties.append((SAID, f"image check: {line}"))

    return say


class Container:
    """One `podman run -d` of the image; its stdout holds the console notifications."""

    def __init__(self, image: str, config_dir: Path, volume: str, api_key: str) -> None:
        self.name = f"immich-sidecar-test-{uuid.uuid4().hex[:10]}"
        self.args = [
            "run",
            "--detach",
            "--name",
            self.name,
            "--network",
            "host",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--user",
            "10001",
            "--volume",
            f"{config_dir}:/config:ro",
            "--volume",
            f"{volume}:/data",
            "--env",
            f"IMMICH_API_KEY={api_key}",
            # No timer: `podman healthcheck run` below runs the image's check once, by hand.
            "--health-interval",
            "disable",
            image,
        ]

    async def start(self) -> None:
        code, _, err = await podman(*self.args)
        assert code == 0, err
        await self.wait_for(lambda out, err: "started" in err, "the 'started' log line")

    async def logs(self) -> tuple[str, str]:
        _, out, err = await podman("logs", self.name)
        return out, err

    async def notifications(self) -> list[dict[str, Any]]:
        found = []
        for line in (await self.logs())[0].splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
        return found

    async def wait_for(self, condition: Callable[[str, str], bool], what: str) -> None:
        started = time.monotonic()
        while True:
            out, err = await self.logs()
            if condition(out, err):
                return
            _, state, _ = await podman("inspect", "--format", "{{.State.Status}}", self.name)
            if state.strip() == "exited" or time.monotonic() - started > WAIT_LIMIT:
                raise AssertionError(
                    f"container {state.strip()} waiting for {what}; log:\n" + err[-3000:]
                )
            await asyncio.sleep(0.25)

    async def wait_for_delivery(self, asset_id: str) -> dict[str, Any]:
        await self.wait_for(lambda out, err: asset_id in out, f"a notification for {asset_id}")
        [line] = [n for n in await self.notifications() if n.get("asset_id") == asset_id]
        return line


@pytest.fixture
def cleanup() -> Iterator[list[list[str]]]:
    """podman commands that remove what a test created, run even when it fails."""
    commands: list[list[str]] = []
    yield commands
    for command in reversed(commands):
        subprocess.run(["podman", *command], capture_output=True, timeout=60, check=False)


async def test_the_image_runs_as_a_user_runs_it(
    image: str, tmp_path: Path, cleanup: list[list[str]], say: Callable[[str], None]
) -> None:
    code, inspected, err = await podman("image", "inspect", image)
    assert code == 0, err
    [details] = json.loads(inspected)
    health = details.get("Healthcheck") or {}
    assert health.get("Test") == ["CMD", "immich-sidecar", "healthcheck"], health
    assert details["Config"]["User"] == "10001:10001"
    licence = (
        "import importlib.metadata as m; print(next(f for f in "
        "m.files('immich-discord-sidecar') if f.name == 'LICENSE').read_text())"
    )
    code, out, err = await podman(
        "run", "--rm", "--read-only", "--entrypoint", "python", image, "-c", licence
    )
    assert code == 0 and out.startswith("MIT License"), out + err
    say(f"{image}: {details['Size'] / 1e6:.0f} MB, HEALTHCHECK kept, user 10001, MIT LICENSE")
    # The build compiled every catalog into the image (a .mo beside each .po), and the
    # read-only container speaks them.
    speaks = (
        "from sidecar.messages import catalogs, texts; from sidecar.messages.render import "
        "Words, say; print(sorted(p.parent.parent.name for p in catalogs.LOCALES_DIR.glob("
        "'*/LC_MESSAGES/messages.mo'))); print(say(Words('pl'), texts.PEOPLE_PHOTOS, "
        "{'people': ['Ola'], 'count': 5}))"
    )
    code, out, err = await podman(
        "run", "--rm", "--read-only", "--entrypoint", "python", image, "-c", speaks
    )
    assert code == 0, out + err
    compiled, polish = out.splitlines()
    assert compiled == str(["de", "en", "es", "fr", "it", "nl", "pl", "pt_BR", "sv"]), out
    assert polish == "Ola: 5 nowych zdjęć"
    say("the image carries the compiled catalogs and speaks Polish")

    async with FakeImmich() as immich:
        alice = immich.add_person("Alice")
        config_dir = tmp_path / "config"
        config_dir.mkdir()
        # Not the default port: the image's health check must follow metrics.listen.
        port = free_port()
        write_config(
            config_dir / "config.yaml",
            immich_url=immich.url,
            state=Path("/data/state.db"),
            rules=RULES,
            metrics_port=port,
        )
        config_dir.chmod(0o755)
        (config_dir / "config.yaml").chmod(0o644)
        volume = f"immich-sidecar-test-{uuid.uuid4().hex[:10]}"
        code, _, err = await podman("volume", "create", volume)
        assert code == 0, err
        cleanup.append(["volume", "rm", "--force", volume])

        first = Container(image, config_dir, volume, immich.api_key)
        cleanup.append(["rm", "--force", "--time", "0", first.name])
        await first.start()
        photo = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        line = await first.wait_for_delivery(photo)
        assert line["rule"] == "kids" and line["people"] == ["Alice"]
        say("a console notification appears in the container log")

        async with httpx.AsyncClient() as http:
            metrics = await http.get(f"http://127.0.0.1:{port}/metrics")
        assert metrics.status_code == 200
        assert 'immich_sidecar_notifications_sent_total{rule="kids",target="stdout"} 1.0' in (
            metrics.text
        )
        say(f"/metrics answers on metrics.listen 127.0.0.1:{port}")

        code, out, err = await podman("healthcheck", "run", first.name)
        assert code == 0, out + err
        say("podman healthcheck run passes (on the port metrics.listen names)")

        code, _, err = await podman(
            "stop", "--time", str(STOP_GRACE), first.name, timeout=STOP_GRACE + 30
        )
        assert code == 0, err
        _, exit_code, _ = await podman("inspect", "--format", "{{.State.ExitCode}}", first.name)
        assert exit_code.strip() == "0", (await first.logs())[1][-3000:]
        assert "sidecar stopped" in (await first.logs())[1]
        say(f"podman stop: exit code 0 within the {STOP_GRACE} s grace period")

        second = Container(image, config_dir, volume, immich.api_key)
        cleanup.append(["rm", "--force", "--time", "0", second.name])
        await second.start()
        later = immich.add_asset(created_at=datetime.now(UTC), people=[alice])
        await second.wait_for_delivery(later)
        # The first photo is still in the look-back window: only the state volume says it was sent.
        assert [n["asset_id"] for n in await second.notifications()] == [later]
        say("a new container on the same state volume does not re-post")
