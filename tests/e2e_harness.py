"""Runs the real ``immich-sidecar run`` process for end-to-end tests and reads what it prints."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
WAIT_LIMIT = 20.0  # seconds any single wait may take before the test fails


# Ports for the sidecar's own servers (metrics, push, the status page) come from below Linux's
# ephemeral range (32768-60999, where bind(0), the fakes and every outgoing connection take
# theirs), a block per xdist worker and in turn within it: a port handed out here is free until
# the process binds it, as no other worker, fake or connection can be given it meanwhile (with
# bind(0) an unlucky one was, and the sidecar failed with "address already in use").
FIRST_PORT, PORT_BLOCK, PORT_BLOCKS = 20000, 1000, 12
_next_port = itertools.count()


def free_port() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    block = FIRST_PORT + (int(worker) % PORT_BLOCKS if worker.isdigit() else 0) * PORT_BLOCK
    for _ in range(PORT_BLOCK):
        port = block + next(_next_port) % PORT_BLOCK
        with socket.socket() as sock, contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            return port
    raise RuntimeError(f"no free port in {block}-{block + PORT_BLOCK - 1}")


def write_config(
    path: Path,
    *,
    immich_url: str,
    state: Path,
    rules: str,
    targets: str | None = None,
    interval: str = "1s",
    settle: str = "1s",
    lookback: str = "1h",
    backfill: str = "0s",
    metrics_port: int | None = None,
    extra: str = "",
    accounts: dict[str, str] | None = None,
    fast_polls: bool = True,
) -> None:
    """Write a config file atomically (as an editor does: a new file renamed over the old).
    ``accounts``: account name -> the environment variable holding its key (instead of the
    single ``api_key: ${IMMICH_API_KEY}``). ``fast_polls=False``: ``poll.fast.for: 0s`` (no
    new-upload check after each poll either)."""
    targets = targets or "stdout: {console: true}"
    keys = (
        ["  accounts:", *(f"    {n}:\n      api_key: ${{{v}}}" for n, v in accounts.items())]
        if accounts
        else ["  api_key: ${IMMICH_API_KEY}"]
    )
    text = (
        "\n".join(
            [
                "immich:",
                f"  url: {immich_url}",
                *keys,
                "  external_url: https://photos.example.test",
                "poll:",
                f"  interval: {interval}",
                f"  lookback: {lookback}",
                f"  settle: {settle}",
                f"  backfill: {backfill}",
                *([] if fast_polls else ["  fast: {for: 0s}"]),
                "state:",
                f"  path: {state}",
                "metrics:",
                f"  listen: 127.0.0.1:{metrics_port or free_port()}",
                "targets:",
                textwrap.indent(targets.strip("\n"), "  "),
                "rules:",
                textwrap.indent(rules.strip("\n"), "  "),
                "",
            ]
        )
        + extra
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class ConfigMapVolume:
    """A folder laid out as kubelet mounts a ConfigMap, and updated the way kubelet updates it
    (its AtomicWriter): the files go into a new timestamped folder, a ``..data_tmp`` symlink to
    that folder is renamed over ``..data``, then the previous folder is removed. ``config.yaml``
    is a symlink to ``..data/config.yaml`` and never changes itself."""

    def __init__(self, folder: Path, name: str = "config.yaml") -> None:
        self.folder = folder
        self.path = folder / name
        self._name = name
        self._updates = 0
        folder.mkdir(parents=True, exist_ok=True)

    def write(self, text: str) -> None:
        self._updates += 1
        stamp = datetime.now(UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + f"{self._updates:09d}"
        (self.folder / stamp).mkdir()
        (self.folder / stamp / self._name).write_text(text)
        data = self.folder / "..data"
        previous = os.readlink(data) if data.is_symlink() else None
        os.symlink(stamp, self.folder / "..data_tmp")
        os.replace(self.folder / "..data_tmp", data)
        if not self.path.is_symlink():
            os.symlink(f"..data/{self._name}", self.path)
        if previous is not None:
            shutil.rmtree(self.folder / previous)

    def timestamped_folders(self) -> list[str]:
        return sorted(
            p.name for p in self.folder.iterdir() if p.name.startswith("..2") and not p.is_symlink()
        )


class SidecarProcess:
    """The sidecar as a child process; stdout lines (JSON notifications) and stderr lines (logs)
    are collected as they arrive. ``options`` go before the command (``--log-level DEBUG``),
    ``run_options`` after it (``--reset-state``);
    with ``log_file`` the log is written into that file (and read back from it) instead of a
    pipe."""

    MODULE = "sidecar"  # run as ``python -m MODULE run -c CONFIG``

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        metrics_port: int,
        *,
        options: Sequence[str] = (),
        log_file: Path | None = None,
        run_options: Sequence[str] = (),
        cwd: Path = REPO,
    ) -> None:
        self.config = config
        self.cwd = cwd  # where relative paths in the config (./data/state.db) start
        self.env = env
        self.metrics_port = metrics_port
        self.options = tuple(options)
        self.run_options = tuple(run_options)  # after the command: ``run --reset-state``
        self.log_file = log_file
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, wait_started: bool = True) -> None:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        log = self.log_file.open("ab") if self.log_file else None
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.MODULE,
                *self.options,
                "run",
                "-c",
                str(self.config),
                *self.run_options,
                cwd=self.cwd,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=log or asyncio.subprocess.PIPE,
            )
        finally:
            if log is not None:
                log.close()  # the child has its own copy
        assert self._proc.stdout
        self._readers = [asyncio.create_task(self._pump(self._proc.stdout, self.stdout))]
        if self._proc.stderr is not None:
            self._readers.append(asyncio.create_task(self._pump(self._proc.stderr, self.stderr)))
        elif self.log_file is not None:
            self._readers.append(asyncio.create_task(self._tail(self.log_file, self.stderr)))
        if wait_started:
            await self.wait_for_log("started")

    @staticmethod
    async def _pump(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))

    async def _tail(self, path: Path, into: list[str]) -> None:
        assert self._proc
        with path.open("rb") as log:
            partial = b""
            while True:
                partial += log.readline()
                if partial.endswith(b"\n"):
                    into.append(partial.decode(errors="replace").rstrip("\n"))
                    partial = b""
                elif self._proc.returncode is not None:
                    if rest := partial + log.read():
                        into.extend(rest.decode(errors="replace").splitlines())
                    return
                else:
                    await asyncio.sleep(0.02)

    def notifications(self) -> list[dict[str, Any]]:
        found = []
        for line in self.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                found.append(json.loads(line))
        return found

    def delivered(self, asset_id: str) -> list[dict[str, Any]]:
        return [n for n in self.notifications() if n.get("asset_id") == asset_id]

    async def wait_until(
        self, condition: Callable[[], bool], what: str, limit: float = WAIT_LIMIT
    ) -> float:
        """Wait for ``condition``; returns the seconds it took. Fails with the logs if it never
        holds, or if the process died."""
        started = time.monotonic()
        while not condition():
            if self._proc is not None and self._proc.returncode is not None:
                raise AssertionError(
                    f"sidecar exited ({self._proc.returncode}) waiting for "
                    f"{what}:\n" + "\n".join(self.stderr[-30:])
                )
            if time.monotonic() - started > limit:
                raise AssertionError(
                    f"timed out waiting for {what}; sidecar log:\n" + "\n".join(self.stderr[-30:])
                )
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def wait_for_log(self, text: str, after: int = 0) -> float:
        return await self.wait_until(
            lambda: any(text in line for line in self.stderr[after:]), f"log line {text!r}"
        )

    async def wait_for_delivery(self, asset_id: str) -> float:
        return await self.wait_until(
            lambda: bool(self.delivered(asset_id)), f"delivery of {asset_id}"
        )

    async def metric(self, name: str, labels: str = "") -> float:
        """A sample from the sidecar's own /metrics endpoint (0 when absent)."""
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{self.metrics_port}/metrics")).text
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.split()[-1])
        return 0.0

    async def readyz(self) -> httpx.Response:
        async with httpx.AsyncClient() as http:
            return await http.get(f"http://127.0.0.1:{self.metrics_port}/readyz")

    async def wait_for_metric(self, name: str, labels: str, at_least: float) -> None:
        started = time.monotonic()
        while await self.metric(name, labels) < at_least:
            if time.monotonic() - started > WAIT_LIMIT:
                raise AssertionError(
                    f"{name}{{{labels}}} stayed below {at_least}; log:\n"
                    + "\n".join(self.stderr[-30:])
                )
            await asyncio.sleep(0.05)

    async def wait_for_polls(self, count: int) -> None:
        """Wait until ``count`` more polls have succeeded."""
        target = await self.successful_polls() + count
        started = time.monotonic()
        while await self.successful_polls() < target:
            if time.monotonic() - started > WAIT_LIMIT:
                raise AssertionError("polls did not succeed; log:\n" + "\n".join(self.stderr[-30:]))
            await asyncio.sleep(0.05)

    async def successful_polls(self) -> float:
        return await self.metric("immich_sidecar_poll_runs_total", 'result="success"')

    async def kill(self) -> None:
        assert self._proc
        self._proc.kill()
        await self._finish()

    async def stop(self) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        assert self._proc
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
        return await self._finish()

    async def exited(self) -> int:
        """Wait for the process to end by itself; returns the exit code."""
        return await self._finish()

    async def _finish(self) -> int:
        assert self._proc
        try:
            code = await asyncio.wait_for(self._proc.wait(), WAIT_LIMIT)
        except TimeoutError:
            self._proc.kill()
            code = await self._proc.wait()
        await asyncio.gather(*self._readers)
        return code
