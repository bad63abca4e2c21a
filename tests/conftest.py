"""Fixtures shared by several test files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes import fake_discord as fd


@pytest.fixture
async def fake() -> AsyncIterator[fd.FakeDiscord]:
    """A fake Discord on 127.0.0.1 with discord.py pointed at it for the test."""
    server = fd.FakeDiscord()
    await server.start()
    with server.patched():
        yield server
    await server.stop()
