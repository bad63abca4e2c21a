"""Fixtures shared by several test files, and how the suite runs in parallel.

`make test` runs the suite on pytest-xdist workers (``-n auto --dist worksteal``: a worker that
runs out of tests takes over half of another's). Tests that must not overlap one another (marked
``container``: they share podman's store; ``serial``: they need a fixed port) run one at a time,
and an ``alone`` test (timing-sensitive: tests/test_faults.py) runs with no other end-to-end or
slow test beside it (``_xdist_locks``). Tests that wait on real time (``e2e``, ``slow``) are
handed out first, so that their waiting overlaps the quick tests instead of trailing after them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes import fake_discord as fd

SAID = "said"  # a test's user_properties key for lines CI's log should show (see ``Said``)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker; every worker sorts alike
        # ``alone`` (tests/test_faults.py, the longest), then end to end and slow, end to end
        # or slow, the rest
        items.sort(
            key=lambda item: (
                not _marked(item, "alone"),
                -sum(_marked(item, name) for name in ("e2e", "slow")),
            )
        )


def _marked(item: pytest.Item, *names: str) -> bool:
    return any(item.get_closest_marker(name) for name in names)


@pytest.fixture(autouse=True)
def _xdist_locks(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """On an xdist worker, the locks a test's markers ask for, shared by the workers of the run.
    An ``alone`` test holds the heavy lock exclusively and every other end-to-end or slow test
    holds it shared: nothing heavy runs beside it. ``container`` and ``serial`` tests hold the
    serial lock: one at a time. Always in this order, so no two tests wait for each other."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        yield
        return
    folder = tmp_path_factory.getbasetemp().parent  # holds the workers' popen-gw0, ...
    node = request.node
    with contextlib.ExitStack() as held:
        if _marked(node, "alone"):
            held.enter_context(_flock(folder / "heavy.lock", fcntl.LOCK_EX))
        elif _marked(node, "e2e", "slow"):
            held.enter_context(_flock(folder / "heavy.lock", fcntl.LOCK_SH))
        if _marked(node, "container", "serial"):
            held.enter_context(_flock(folder / "serial.lock", fcntl.LOCK_EX))
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
