"""Shared links for messages (``links: shared``): made once per message through the real Immich
client against the fake Immich, kept in the state before the send (a retry, a restart, another
member's DM reuse it), pruned once expired; without ``sharedLink.create`` none is made and the
feature is off, said once (issue 26)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.config.model import Secret
from sidecar.engine.access import FeatureAccess
from sidecar.engine.shared_links import SharedLinks
from sidecar.engine.store.database import Store
from sidecar.engine.store.outbox import StoredLink
from sidecar.immich.client import ImmichClient
from sidecar.immich.permissions import SHARED_LINKS, WATCHING
from sidecar.ops.metrics import Metrics
from sidecar.targets.base import ShareRequest
from tests.fakes.fake_immich import FakeImmich

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
EVERYTHING_BUT_SHARING = ["asset.read", "asset.view", "asset.statistics", "user.read"]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def request(asset_ids: list[str], message: str = "m1", **kw: object) -> ShareRequest:
    fields: dict[str, object] = {
        "target": "family",
        "message": message,
        "asset_ids": tuple(asset_ids),
        "album_id": None,
        "expire": 30 * 86400.0,
        "download": False,
        "metadata": False,
        "description": "immich-discord-sidecar: family (kids)",
    }
    fields.update(kw)
    return ShareRequest(**fields)  # type: ignore[arg-type]


@pytest.fixture
async def immich() -> AsyncIterator[FakeImmich]:
    async with FakeImmich() as server:
        yield server


async def links_for(
    immich: FakeImmich, tmp_path: Path, clock: Clock, permissions=("all",)
) -> AsyncIterator[tuple[SharedLinks, Store, FeatureAccess]]:
    store = Store.open(tmp_path / "state.db")
    access = FeatureAccess(Metrics())
    access.use([WATCHING, SHARED_LINKS])
    access.granted(permissions)
    async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
        yield SharedLinks(store, lambda: [client], access, clock), store, access
    store.close()


def test_the_state_keeps_a_link_until_it_expires(tmp_path):
    store = Store.open(tmp_path / "state.db")
    link = StoredLink("id-1", "KEY", T0 + timedelta(days=30))
    store.keep_shared_link("family", "m1", link, T0)
    assert store.shared_link("family", "m1", T0) == link
    assert store.shared_link("family", "m2", T0) is None
    assert store.shared_link("other", "m1", T0) is None
    assert store.prune_shared_links(T0 + timedelta(days=29)) == 0
    assert store.shared_link("family", "m1", T0 + timedelta(days=31)) is None  # expired
    assert store.prune_shared_links(T0 + timedelta(days=31)) == 1
    assert store.shared_link_count() == 0
    store.close()


async def test_one_link_per_message_with_the_configured_expiry_reused_after_a_restart(
    immich, tmp_path
):
    photos = [immich.add_asset(), immich.add_asset()]
    clock = Clock()
    async for links, _store, _ in links_for(immich, tmp_path, clock):
        key = await links.key_for(request(photos))
        assert key is not None
        assert await links.key_for(request(photos)) == key  # a retry
        other = await links.key_for(request(photos[:1], message="m2"))
        assert other not in (None, key)
    creates = immich.api_requests("POST", "/api/shared-links")
    assert len(creates) == 2
    body = creates[0].json
    assert body["type"] == "INDIVIDUAL" and body["assetIds"] == photos
    assert body["expiresAt"] == "2026-05-31T12:00:00.000Z"
    assert (body["allowDownload"], body["showMetadata"]) == (False, False)
    link = immich.shared_links.by_key(key)
    assert link is not None and link.expires_at == T0 + timedelta(days=30)
    async for links, _store, _ in links_for(immich, tmp_path, clock):  # the state, reopened
        assert await links.key_for(request(photos)) == key
    assert len(immich.api_requests("POST", "/api/shared-links")) == 2


async def test_an_expired_link_is_pruned_and_a_new_one_made(immich, tmp_path):
    photos = [immich.add_asset()]
    clock = Clock()
    async for links, store, _ in links_for(immich, tmp_path, clock):
        first = await links.key_for(request(photos, expire=3600.0))
        clock.now = T0 + timedelta(hours=2)
        second = await links.key_for(request(photos, expire=3600.0))
        assert second != first
        assert store.shared_link_count() == 1  # the expired one is gone


async def test_an_album_message_gets_the_album_s_link(immich, tmp_path):
    album = immich.add_album("Holiday", [immich.add_asset()])
    async for links, _store, _ in links_for(immich, tmp_path, Clock()):
        key = await links.key_for(request([], album_id=album))
    [create] = immich.api_requests("POST", "/api/shared-links")
    assert create.json["type"] == "ALBUM" and create.json["albumId"] == album
    link = immich.shared_links.by_key(str(key))
    assert link is not None and link.album_id == album


async def test_without_the_permission_no_link_is_made_and_it_is_said_once(immich, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    photos = [immich.add_asset()]
    async for links, _store, access in links_for(
        immich, tmp_path, Clock(), permissions=EVERYTHING_BUT_SHARING
    ):
        assert not access.is_on(SHARED_LINKS)
        assert await links.key_for(request(photos)) is None
        assert await links.key_for(request(photos, message="m2")) is None
    assert immich.api_requests("POST", "/api/shared-links") == []
    said = [r.getMessage() for r in caplog.records if "shared links are off" in r.getMessage()]
    assert said == [
        "shared links are off: the Immich API key lacks sharedLink.create; add it to the key "
        "(Immich: Account settings > API keys); targets with links: shared link into Immich "
        "meanwhile"
    ]


async def test_a_403_while_making_one_turns_the_feature_off_once(immich, tmp_path, caplog):
    """The key listed ``all`` but Immich refused (the permission was taken away since)."""
    caplog.set_level(logging.WARNING)
    photos = [immich.add_asset()]
    immich.permissions = EVERYTHING_BUT_SHARING
    async for links, _store, access in links_for(immich, tmp_path, Clock()):
        assert await links.key_for(request(photos)) is None
        assert not access.is_on(SHARED_LINKS)
        assert await links.key_for(request(photos, message="m2")) is None
    assert len(immich.api_requests("POST", "/api/shared-links")) == 1
    said = [r for r in caplog.records if "shared links are off" in r.getMessage()]
    assert len(said) == 1


async def test_assets_no_account_may_share_link_into_immich_said_once(immich, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    bob = immich.add_user("Bob", api_key="bob-key")
    his = immich.add_asset(owner=bob)
    async for links, _store, _ in links_for(immich, tmp_path, Clock()):
        assert await links.key_for(request([his])) is None
        assert await links.key_for(request([his], message="m2")) is None
    said = [r for r in caplog.records if "no Immich account may share" in r.getMessage()]
    assert len(said) == 1
