"""Fixtures shared by several test files, and how the suite runs in parallel.

`make test` runs the suite on pytest-xdist workers (``-n auto --dist worksteal``: a worker
that runs out of tests takes over half of another's). Tests that
must not overlap one another (marked ``container``: they share podman's store; ``serial``: they
need a fixed port) take one lock, shared by the workers of a run, so they run one at a time.
Tests that wait on real time (``e2e``, ``slow``) are handed out first, so that their waiting
overlaps the quick tests instead of trailing after them.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes import fake_discord as fd

SAID = "said"  # a test's user_properties key for lines CI's log should show (see ``Said``)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker; every worker sorts alike
        # end to end and slow (the longest: tests/test_faults.py), end to end or slow, the rest
        items.sort(key=lambda item: -sum(_marked(item, name) for name in ("e2e", "slow")))


def _marked(item: pytest.Item, *names: str) -> bool:
    return any(item.get_closest_marker(name) for name in names)


@pytest.fixture(autouse=True)
def _one_at_a_time(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Holds the run's lock around a ``container`` or ``serial`` test on an xdist worker."""
    if not (os.environ.get("PYTEST_XDIST_WORKER") and _marked(request.node, "container", "serial")):
        yield
        return
    # The workers' base folders (popen-gw0, ...) share this run's folder.
    path = tmp_path_factory.getbasetemp().parent / "one-at-a-time.lock"
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


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
