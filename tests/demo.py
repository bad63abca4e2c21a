"""See the sidecar work without Immich or Discord: ``python -m tests.demo`` (or ``make demo``).

Starts a fake Immich on 127.0.0.1 (port 2283 when free) with Alice, Bob and Carol, writes a
temporary config whose only target is the console, runs ``python -m sidecar run`` against it,
and then plays a little story: new photos, a face that Immich recognises ten seconds after the
upload, a video. The sidecar's notifications appear on stdout; the story is told on stderr,
one ``demo:`` line per event. Stops on Ctrl-C, or by itself with ``--seconds N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.fakes.fake_immich import FakeImmich

REPO_ROOT = Path(__file__).resolve().parents[1]
API_KEY = "demo-api-key"
IMMICH_PORT = 2283
METRICS_PORT = 9187
LATE_FACE_DELAY = 10.0  # seconds between an upload and Immich recognising Alice on it
STOP_GRACE = 10.0  # seconds the sidecar gets to stop after SIGTERM


def say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def start_fake_immich() -> FakeImmich:
    """On the port Immich uses when it is free, so the URL looks familiar; else anywhere."""
    if port_is_free(IMMICH_PORT):
        fake = FakeImmich(api_key=API_KEY, port=IMMICH_PORT)
        with contextlib.suppress(OSError):
            await fake.start()
            return fake
    fake = FakeImmich(api_key=API_KEY)
    await fake.start()
    return fake


def write_config(directory: Path, immich_url: str) -> Path:
    metrics_port = METRICS_PORT if port_is_free(METRICS_PORT) else free_port()
    config = {
        "immich": {"url": immich_url, "api_key": "${IMMICH_API_KEY}", "external_url": immich_url},
        "poll": {"interval": "2s", "lookback": "1h", "settle": "2s", "backfill": "10m"},
        # Not beside the config: the sidecar watches the config's folder for changes.
        "state": {"path": str(directory / "state" / "state.db")},
        "metrics": {"listen": f"127.0.0.1:{metrics_port}"},
        "targets": {"stdout": {"console": True}},
        "rules": [
            {"name": "kids", "people": {"any": ["Alice", "Bob"]}, "targets": ["stdout"]},
            {"name": "videos", "asset_types": ["VIDEO"], "targets": ["stdout"]},
        ],
    }
    (directory / "state").mkdir()
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    say(f"config written to {path}; metrics on http://127.0.0.1:{metrics_port}/metrics")
    return path


class Story:
    """What happens in the fake Immich while the sidecar watches."""

    def __init__(self, immich: FakeImmich) -> None:
        self.immich = immich
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.carol = immich.add_person("Carol")

    def seed_library(self) -> None:
        minutes_ago = datetime.now(UTC) - timedelta(minutes=3)
        self.immich.add_asset(created_at=minutes_ago, people=[self.alice], file_name="garden.jpg")
        self.immich.add_asset(created_at=minutes_ago, people=[self.carol], file_name="desk.jpg")
        self.immich.add_asset(
            created_at=minutes_ago - timedelta(days=2), people=[self.bob], file_name="old.jpg"
        )
        say(
            "the library already holds garden.jpg (Alice) and desk.jpg (Carol) from 3 minutes "
            "ago, and old.jpg (Bob) from two days ago; backfill is 10m, so expect garden.jpg only"
        )

    def steps(self) -> list[tuple[float, Callable[[], None]]]:
        """(seconds after the start, event)."""
        beach: list[str] = []

        def upload_beach() -> None:
            beach.append(self.immich.add_asset(file_name="beach.jpg", unrecognised_faces=1))
            say("uploaded beach.jpg (Alice not yet recognised)")

        def recognise_alice() -> None:
            self.immich.recognise(beach[0], self.alice)
            say(
                f"Immich recognised Alice on beach.jpg, {LATE_FACE_DELAY:.0f} s after the upload "
                "(its updatedAt did not change)"
            )

        def upload(name: str, people: list[str], note: str, kind: str = "IMAGE") -> None:
            self.immich.add_asset(file_name=name, people=people, type=kind)
            say(f"uploaded {name} ({note})")

        return [
            (4.0, upload_beach),
            (4.0 + LATE_FACE_DELAY, recognise_alice),
            (6.0, lambda: upload("park.jpg", [self.bob], "Bob recognised at once")),
            (8.0, lambda: upload("office.jpg", [self.carol], "only Carol: no rule watches her")),
            (18.0, lambda: upload("skate.mp4", [], "a video with nobody in it", "VIDEO")),
        ]

    def more(self) -> Callable[[], None]:
        """After the story: a new photo now and then, someone different each time."""
        cast = itertools.cycle([("Bob", self.bob), ("Carol", self.carol), ("Alice", self.alice)])
        counter = itertools.count(1)

        def upload_next() -> None:
            name, person = next(cast)
            file_name = f"IMG_{next(counter):04d}.jpg"
            self.immich.add_asset(file_name=file_name, people=[person])
            say(f"uploaded {file_name} ({name})")

        return upload_next


async def play(story: Story, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for at, event in sorted(story.steps(), key=lambda step: step[0]):
        if await wait_or_stop(stop, started + at - loop.time()):
            return
        event()
    upload_next = story.more()
    while not await wait_or_stop(stop, 20.0):
        upload_next()


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``; True when asked to stop meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    return stop.is_set()


async def stop_sidecar(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout=STOP_GRACE)
        except TimeoutError:
            say(f"the sidecar did not stop within {STOP_GRACE:.0f} s; killing it")
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode


async def run_demo(seconds: float | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    immich = await start_fake_immich()
    try:
        say(f"fake Immich 2.7.5 on {immich.url} (API key {API_KEY!r}, a demo value)")
        story = Story(immich)
        story.seed_library()
        with tempfile.TemporaryDirectory(prefix="sidecar-demo-") as directory:
            config = write_config(Path(directory), immich.url)
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sidecar",
                "run",
                "-c",
                str(config),
                cwd=REPO_ROOT,
                env={
                    **os.environ,
                    "IMMICH_API_KEY": API_KEY,
                    "SIDECAR_LOG_LEVEL": os.environ.get("SIDECAR_LOG_LEVEL", "WARNING"),
                },
            )
            say(
                f"sidecar started (pid {process.pid}); notifications follow on stdout "
                "(its log shows warnings only; SIDECAR_LOG_LEVEL=INFO for more)"
            )
            say("stop with Ctrl-C" if seconds is None else f"stopping in {seconds:g} s")
            return await supervise(process, story, stop, seconds)
    finally:
        await immich.stop()


async def supervise(
    process: asyncio.subprocess.Process, story: Story, stop: asyncio.Event, seconds: float | None
) -> int:
    tasks: list[asyncio.Task[object]] = [
        asyncio.create_task(play(story, stop)),
        asyncio.create_task(process.wait()),
        asyncio.create_task(stop.wait()),
    ]
    if seconds is not None:
        tasks.append(asyncio.create_task(asyncio.sleep(seconds)))
    try:
        await asyncio.wait(tasks[1:], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    exited_by_itself = process.returncode is not None
    code = await stop_sidecar(process)
    calls = len(story.immich.requests)
    if exited_by_itself:
        say(f"the sidecar stopped by itself (exit code {code}) after {calls} Immich API calls")
        return code or 1
    say(f"done: the sidecar made {calls} Immich API calls and exited with code {code}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.demo",
        description="Run the sidecar against a fake Immich and print its notifications.",
    )
    parser.add_argument(
        "--seconds", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)"
    )
    args = parser.parse_args(argv)
    if args.seconds is not None and args.seconds <= 0:
        parser.error("--seconds must be more than 0")
    try:
        return asyncio.run(run_demo(args.seconds))
    except OSError as error:
        say(f"could not start: {error}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
