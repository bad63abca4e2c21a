"""Fixtures shared by several test files, and how the suite runs in parallel.

`make test` runs the suite on pytest-xdist workers (``-n auto --dist worksteal``), two per core:
most tests spend their time waiting on real time (a poll interval, a restart, a fake server's
answer), not on the CPU, so a core has room for two (``pytest_xdist_auto_num_workers``).

Before the run each worker is dealt an equal share of the expected time (``dealt``, by
marker): the longest tests first, each to the worker with the least time so far (the ``long``
one, tests/test_faults.py, fills a worker's first minutes while the others take the end-to-end
and slow ones), and each worker runs its longest first; ``worksteal`` then lets a worker that
runs out of tests take over half of another's. Tests that must not overlap one another
(``container``: they share podman's store; ``serial``: they need a fixed port) are dealt to one
worker, and hold a lock besides (``_xdist_locks``) in case another worker takes one over.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import pytest

from tests.fakes import fake_discord as fd

SAID = "said"  # a test's user_properties key for lines CI's log should show (see ``Said``)
WORKERS_PER_CORE = 2
# Rough seconds a test takes, by marker (the first that applies), to deal the run out evenly.
EXPECTED_SECONDS = (("long", 120.0), ("container", 8.0), ("e2e", 7.0), ("slow", 3.0))
QUICK_SECONDS = 0.05
LOCKED = ("container", "serial")  # one at a time: dealt to one worker, and a lock


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return WORKERS_PER_CORE * (cores or 1)


@pytest.hookimpl(trylast=True)  # after -m and -k have deselected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker; every worker deals alike
        items[:] = dealt(items, int(config.workerinput["workercount"]))


def dealt(items: Sequence[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` in the order whose first split by ``--dist worksteal`` (worker i is sent
    ``len(left) // (workers - i)`` of the tests left) gives each worker an equal share of the
    expected time: the longest go first, each to the share with the least time so far that has
    room for it; the locked tests go as one. Each share runs its longest first."""
    sizes = []
    left = len(items)
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    locked = [item for item in items if _marked(item, *LOCKED)]
    units = [[item] for item in items if not _marked(item, *LOCKED)]
    if locked:
        units.append(locked)
    units.sort(key=lambda unit: -sum(map(expected_seconds, unit)))  # stable: ties keep order
    shares: list[list[pytest.Item]] = [[] for _ in sizes]
    seconds = [0.0 for _ in sizes]
    for unit in units:
        roomy = [i for i, size in enumerate(sizes) if len(shares[i]) + len(unit) <= size]
        share = min(roomy or range(len(sizes)), key=lambda i: (seconds[i], i))
        shares[share] += unit
        seconds[share] += sum(map(expected_seconds, unit))
    return [item for share in shares for item in sorted(share, key=lambda i: -expected_seconds(i))]


def expected_seconds(item: pytest.Item) -> float:
    return next((s for name, s in EXPECTED_SECONDS if _marked(item, name)), QUICK_SECONDS)


def _marked(item: pytest.Item, *names: str) -> bool:
    return any(item.get_closest_marker(name) for name in names)


@pytest.fixture(autouse=True)
def _xdist_locks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """On an xdist worker, ``container`` and ``serial`` tests hold the serial lock, shared by the
    workers of the run: one at a time."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not _marked(request.node, *LOCKED):
        yield
        return
    folder = tmp_path_factory.getbasetemp().parent  # holds the workers' popen-gw0, ...
    with _flock(folder / "serial.lock", fcntl.LOCK_EX):
        yield


@contextlib.contextmanager
def _flock(path: Path, how: int) -> Iterator[None]:
    with path.open("a") as file:
        fcntl.flock(file, how)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


class Said:
    """Prints the lines a test put under ``SAID`` in its user_properties once it has run, in
    the process that reports (xdist workers hand their reports to it; a print of their own
    would not reach the terminal)."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        lines = [str(value) for name, value in report.user_properties if name == SAID]
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if report.when != "call" or not lines or reporter is None:
            return
        reporter.write("\n" + "".join(f"  {line}\n" for line in lines))


def pytest_configure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(Said(config), "said-lines")


@pytest.fixture
async def fake() -> AsyncIterator[fd.FakeDiscord]:
    """A fake Discord on 127.0.0.1 with discord.py pointed at it for the test."""
    server = fd.FakeDiscord()
    await server.start()
    with server.patched():
        yield server
    await server.stop()
