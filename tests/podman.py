"""Running the image that `.ci/build-image` built, with podman, from async tests (the fakes answer
in the test's event loop, so podman must not block it).

Without podman, podman-compose or the image a test is skipped with the reason; in CI (CI=true) it
fails, because CI must run it (.ci/run builds the image and installs the tools first)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

IMAGE = os.environ.get("SIDECAR_TEST_IMAGE", "localhost/immich-discord-sidecar:ci")
WAIT_LIMIT = 60.0  # seconds any single wait may take before the test fails
HOW = "`bash .ci/build-image` (root, Debian) installs podman and builds it"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI requires the image: {reason}", pytrace=False)
    pytest.skip(reason)


def require_image(*tools: str) -> str:
    """The image's name, once podman (and ``tools``) and the image are there."""
    for tool in ("podman", *tools):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed; {HOW}")
    found = subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False)
    if found.returncode != 0:
        unavailable(f"no image {IMAGE}; {HOW}")
    return IMAGE


async def run(
    *command: str, timeout: float = WAIT_LIMIT, cwd: str | None = None
) -> tuple[int, str, str]:
    """A command's exit code, stdout and stderr, without blocking the event loop."""
    proc = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{' '.join(command)} took more than {timeout} s") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


async def podman(*args: str, timeout: float = WAIT_LIMIT) -> tuple[int, str, str]:
    return await run("podman", *args, timeout=timeout)
