"""Where the sidecar will run, and the settings that suit it: a laptop tries it out (quick
polls, state beside the config, metrics on this machine only); a container runs it for good
beside Immich (the image's /data volume, metrics reachable by Prometheus)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

LAPTOP = "laptop"
CONTAINER = "container"
PLACES = (LAPTOP, CONTAINER)


@dataclass(frozen=True)
class Place:
    name: str  # LAPTOP or CONTAINER
    immich_url: str  # where Immich usually answers from there
    interval: str
    settle: str
    backfill: str
    state_path: str
    metrics_listen: str
    why: str  # one comment line on the poll settings


SETTINGS = {
    LAPTOP: Place(
        LAPTOP,
        "http://localhost:2283",
        interval="5s",
        settle="5s",
        backfill="1h",
        state_path="./data/state.db",
        metrics_listen="127.0.0.1:9187",
        why="quick polls for a first try: a new upload shows within 5 to 10 seconds",
    ),
    CONTAINER: Place(
        CONTAINER,
        "http://immich-server:2283",
        interval="2m",
        settle="2m",
        backfill="0s",
        state_path="/data/state.db",
        metrics_listen="0.0.0.0:9187",
        why="a poll every 2 minutes is two or three small requests to Immich",
    ),
}


def detect_place(environ: Mapping[str, str], exists: Callable[[Path], bool] = Path.exists) -> str:
    """``container`` inside Docker or Podman (``/.dockerenv``) or Kubernetes
    (``KUBERNETES_SERVICE_HOST``), else ``laptop``."""
    if environ.get("KUBERNETES_SERVICE_HOST") or exists(Path("/.dockerenv")):
        return CONTAINER
    return LAPTOP
