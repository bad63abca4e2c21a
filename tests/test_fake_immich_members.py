"""The fake Immich's favourite (bulk update), people-merge and rename behaviour, and who owns
an upload, as Immich does it, each answer validated against the spec of its version."""

from __future__ import annotations

import pytest

from tests.fakes.fake_immich import FakeImmich
from tests.openapi import require_spec, validate_request, validate_response
from tests.test_fake_immich import SPEC_FOR, client_for

VERSIONS = [(2, 7, 5), (3, 0, 3)]


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: ".".join(map(str, v)))
async def test_bulk_update_favourites_the_key_owners_assets_only(version) -> None:
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        own = immich.add_asset()
        grandpa = immich.add_user("Grandpa")
        album = immich.add_album("Shared", owner=grandpa, shared_with=[immich.key_user_id])
        theirs = immich.add_asset(owner=grandpa)
        immich.add_to_album(album, [theirs])
        body = {"ids": [own], "isFavorite": True}
        validate_request(spec, "PUT", "/api/assets", {}, body, None)
        answer = await api.put("/assets", json=body)
        assert answer.status_code == 204 and answer.content == b""
        validate_response(spec, "PUT", "/api/assets", 204, None)
        assert immich.is_favourite(own)
        # A shared album lets the key's user see another user's asset, not change it.
        seen = await api.get(f"/assets/{theirs}")
        assert seen.status_code == 200
        refused = await api.put("/assets", json={"ids": [theirs], "isFavorite": True})
        assert refused.status_code == 400
        assert refused.json()["message"] == "Not found or no asset.update access"
        assert not immich.is_favourite(theirs)


async def test_bulk_update_needs_asset_update() -> None:
    async with FakeImmich(permissions=["asset.read"]) as immich, client_for(immich) as api:
        own = immich.add_asset()
        answer = await api.put("/assets", json={"ids": [own], "isFavorite": True})
        assert answer.status_code == 403
        assert "asset.update" in answer.json()["message"]
        assert not immich.is_favourite(own)


async def test_a_merged_person_is_gone_and_their_faces_moved() -> None:
    async with FakeImmich() as immich, client_for(immich) as api:
        alice = immich.add_person("Alice")
        duplicate = immich.add_person("Alice B")
        photo = immich.add_asset(people=[duplicate])
        immich.merge_people(duplicate, alice)
        assert (await api.get(f"/people/{duplicate}")).status_code == 400
        assert (await api.get(f"/people/{alice}")).status_code == 200
        faces = (await api.get("/faces", params={"id": photo})).json()
        assert [f["person"]["id"] for f in faces] == [alice]


async def test_a_renamed_person_is_found_by_the_new_name_only() -> None:
    async with FakeImmich() as immich, client_for(immich) as api:
        grandma = immich.add_person("Grandma")
        immich.rename_person(grandma, "Granny")
        old = (await api.get("/search/person", params={"name": "Grandma"})).json()
        new = (await api.get("/search/person", params={"name": "Granny"})).json()
        assert "Grandma" not in [p["name"] for p in old]  # a near miss at most (fuzzy search)
        assert [p["id"] for p in new] == [grandma]
        assert (await api.get(f"/people/{grandma}")).json()["name"] == "Granny"


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: ".".join(map(str, v)))
async def test_an_upload_belongs_to_the_keys_user_and_duplicates_are_per_user(version) -> None:
    """Immich keeps a checksum unique per owner: Mum uploading the photo Dad has is a new asset
    of hers; uploading it again is her duplicate."""
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich:
        mum = immich.add_user("Mum", api_key="mum-key")
        fields = {
            "fileCreatedAt": "2026-06-01T12:00:00.000Z",
            "fileModifiedAt": "2026-06-01T12:00:00.000Z",
            "deviceAssetId": "d-1",
            "deviceId": "sidecar",
        }
        files = {"assetData": ("beach.jpg", b"\xff\xd8 the same photo")}
        async with client_for(immich) as dad, client_for(immich, key="mum-key") as hers:
            first = await dad.post("/assets", data=fields, files=files)
            theirs = await hers.post("/assets", data=fields, files=files)
            again = await hers.post("/assets", data=fields, files=files)
        assert first.status_code == theirs.status_code == 201
        validate_response(spec, "POST", "/api/assets", 201, theirs.json())
        assert first.json()["id"] != theirs.json()["id"]
        assert again.status_code == 200
        assert again.json() == {"id": theirs.json()["id"], "status": "duplicate"}
        assert immich.asset_json(theirs.json()["id"])["ownerId"] == mum
        assert immich.asset_json(first.json()["id"])["ownerId"] == immich.key_user_id
