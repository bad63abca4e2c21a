"""The fake Immich: its answers match the published specs, and its state behaves like Immich."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import subprocess
import sys
import zlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes import images
from tests.fakes.fake_immich import FakeImmich, Faults, asset_picture, person_picture
from tests.openapi import require_spec, validate_request, validate_response

REPO_ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test-api-key"
SPEC_FOR = {(2, 7, 5): "2.7.3", (3, 0, 3): "3.0.3", (3, 2, 0): "3.0.3"}
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def client_for(immich: FakeImmich, *, key: str | None = API_KEY) -> httpx.AsyncClient:
    headers = {"x-api-key": key} if key is not None else {}
    return httpx.AsyncClient(base_url=f"{immich.url}/api", headers=headers, timeout=10)


@pytest.fixture
async def immich() -> AsyncIterator[FakeImmich]:
    async with FakeImmich() as fake:
        yield fake


@pytest.fixture
async def api(immich: FakeImmich) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(immich) as client:
        yield client


async def search(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await api.post("/search/metadata", json=body)
    assert response.status_code == 200, response.text
    assets: dict[str, Any] = response.json()["assets"]
    return assets


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


# --- contract: every shape the fake returns validates against the matching spec ----------


@pytest.mark.parametrize("version", list(SPEC_FOR), ids=lambda v: ".".join(map(str, v)))
async def test_every_response_matches_the_spec_of_its_version(version: tuple[int, int, int]):
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        alice = immich.add_person("Alice")
        unnamed = immich.add_person("")
        photo = immich.add_asset(
            people=[alice, unnamed], city="Oslo", country="Norway", unrecognised_faces=1
        )
        video = immich.add_asset(type="VIDEO", description="a walk")
        album = immich.add_album("Family", [photo])
        checked: list[str] = []

        async def check(method: str, path: str, **kwargs: Any) -> httpx.Response:
            response = await api.request(method, path, **kwargs)
            assert response.status_code < 300, response.text
            if response.headers["content-type"].startswith("application/json"):
                body: object = response.json()
            else:
                body = response.content
            validate_response(spec, method, f"/api{path}", response.status_code, body)
            checked.append(f"{method} {path}")
            return response

        await check("GET", "/server/ping")
        await check("GET", "/server/version")
        await check("GET", "/api-keys/me")
        for body in (
            {"withPeople": True, "withExif": True},
            {"withPeople": False, "size": 1, "page": 1, "type": "IMAGE"},
            {"personIds": [alice], "createdAfter": iso(T0), "visibility": "timeline"},
        ):
            validate_request(spec, "POST", "/api/search/metadata", {}, body, None)
            found = (await check("POST", "/search/metadata", json=body)).json()
            assert found["assets"]["items"], body
        await check("GET", "/people", params={"withHidden": "false", "page": 1, "size": 10})
        await check("GET", "/search/person", params={"name": "ali"})
        await check("GET", f"/people/{alice}")
        await check("GET", f"/people/{alice}/statistics")
        thumb = await check("GET", f"/people/{alice}/thumbnail")
        assert thumb.content == person_picture(alice)
        for size in ("thumbnail", "preview", "fullsize"):
            picture = await check("GET", f"/assets/{photo}/thumbnail", params={"size": size})
            assert picture.content == asset_picture(photo, size)
        await check("GET", f"/assets/{photo}")
        await check("GET", f"/assets/{video}")
        await check("GET", "/faces", params={"id": photo})
        await check("PUT", f"/assets/{video}", json={"description": "a longer walk"})
        await check("GET", f"/albums/{album}")
        await check("PUT", f"/albums/{album}/assets", json={"ids": [video, photo]})
        fields = {"fileCreatedAt": iso(T0), "fileModifiedAt": iso(T0)}
        if version < (3, 0, 0):
            fields |= {"deviceAssetId": "a-1", "deviceId": "sidecar"}
        upload = await check(
            "POST", "/assets", data=fields, files={"assetData": ("x.jpg", b"\xff\xd8 photo")}
        )
        assert upload.status_code == 201
    assert len(checked) == 21


async def test_assets_take_the_shape_of_their_major_version():
    for version, has_faces in (((2, 7, 5), True), ((3, 0, 3), False)):
        async with FakeImmich(version=version) as immich, client_for(immich) as api:
            alice = immich.add_person("Alice")
            photo = immich.add_asset(people=[alice])
            asset = (await api.get(f"/assets/{photo}")).json()
            assert ("faces" in asset["people"][0]) is has_faces
            assert ("deviceAssetId" in asset) is has_faces
            assert ("deviceId" in asset) is has_faces
            assert ("x-correlation-id" in (await api.get("/server/ping")).headers) is not has_faces


# --- search semantics --------------------------------------------------------------------


async def test_search_pages_through_every_match_newest_taken_first(immich, api):
    taken = [T0 + timedelta(minutes=i) for i in range(5)]
    added = [immich.add_asset(taken_at=t) for t in taken]
    seen: list[str] = []
    pages: list[Any] = []
    page: str | None = "1"
    while page is not None:
        assert len(pages) < 10, "nextPage never became null"
        result = await search(api, size=2, page=int(page))
        seen += ids(result)
        pages.append(result["nextPage"])
        page = result["nextPage"]
    assert pages == ["2", "3", None]
    assert seen == list(reversed(added))
    assert ids(await search(api, order="asc")) == added


async def test_person_ids_means_all_of_them(immich, api):
    alice, bob = immich.add_person("Alice"), immich.add_person("Bob")
    only_alice = immich.add_asset(people=[alice])
    both = immich.add_asset(people=[alice, bob])
    immich.add_asset(people=[bob])
    assert ids(await search(api, personIds=[alice, bob])) == [both]
    assert set(ids(await search(api, personIds=[alice]))) == {only_alice, both}


async def test_created_after_and_before_include_their_bounds(immich, api):
    early, middle, late = (
        immich.add_asset(created_at=T0 + timedelta(seconds=s)) for s in (0, 1, 2)
    )
    bound = iso(T0 + timedelta(seconds=1))
    assert set(ids(await search(api, createdAfter=bound))) == {middle, late}
    assert set(ids(await search(api, createdBefore=bound))) == {early, middle}
    assert ids(await search(api, createdAfter=bound, createdBefore=bound)) == [middle]


async def test_a_face_recognised_later_shows_in_the_next_search_without_touching_updated_at(
    immich, api
):
    alice = immich.add_person("Alice")
    photo = immich.add_asset(created_at=T0, unrecognised_faces=1)
    assert ids(await search(api, personIds=[alice])) == []
    before = (await api.get(f"/assets/{photo}")).json()
    assert before["people"] == [] and len(before["unassignedFaces"]) == 1

    immich.recognise(photo, alice)

    found = await search(api, personIds=[alice], withPeople=True)
    assert ids(found) == [photo]
    assert [p["name"] for p in found["items"][0]["people"]] == ["Alice"]
    assert found["items"][0]["updatedAt"] == before["updatedAt"]
    assert ids(await search(api, updatedAfter=iso(T0 + timedelta(seconds=1)))) == []


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def test_default_search_skips_hidden_locked_and_trashed(version: tuple[int, int, int]):
    """2.x returns only timeline assets when no visibility is asked for; 3.x archived too."""
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        timeline = immich.add_asset()
        archived = immich.add_asset(visibility="archive")
        immich.add_asset(visibility="hidden")
        locked = immich.add_asset(visibility="locked")
        trashed = immich.add_asset(trashed=True)
        by_default = {timeline, archived} if version >= (3, 0, 0) else {timeline}
        assert set(ids(await search(api))) == by_default
        assert ids(await search(api, visibility="archive")) == [archived]
        assert ids(await search(api, visibility="locked")) == [locked]
        assert trashed in ids(await search(api, withDeleted=True))
        immich.set_visibility(timeline, "archive")
        immich.trash(archived)
        assert ids(await search(api, visibility="timeline")) == []


async def test_people_and_exif_only_when_asked(immich, api):
    alice = immich.add_person("Alice")
    immich.add_asset(people=[alice], city="Oslo")
    plain = (await search(api))["items"][0]
    assert "people" not in plain and "exifInfo" not in plain
    rich = (await search(api, withPeople=True, withExif=True))["items"][0]
    assert rich["people"][0]["id"] == alice
    assert rich["exifInfo"]["city"] == "Oslo"


async def test_search_rejects_what_immich_rejects(immich, api):
    too_big = await api.post("/search/metadata", json={"size": 1001})
    assert too_big.status_code == 400
    assert too_big.json()["message"] == ["size must not be greater than 1000"]
    unknown = await api.post("/search/metadata", json={"personId": "x"})
    assert unknown.status_code == 200  # an unknown field is stripped, not refused
    bad_uuid = await api.post("/search/metadata", json={"personIds": ["alice"]})
    assert bad_uuid.status_code == 400
    bad_date = await api.post("/search/metadata", json={"createdAfter": "yesterday"})
    assert bad_date.json()["message"] == ["createdAfter must be a valid ISO 8601 date string"]


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def test_a_filter_sent_before_3_2_is_ignored_and_the_search_comes_back_unfiltered(
    version: tuple[int, int, int],
):
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        photo, video = immich.add_asset(), immich.add_asset(type="VIDEO")
        response = await api.post(
            "/search/metadata", json={"filter": {"type": {"eq": "VIDEO"}}, "cursor": "x"}
        )
        assert response.status_code == 200
        assert set(ids(response.json()["assets"])) == {photo, video}


async def test_3_2_filter_any_none_or_and_cursor():
    async with FakeImmich(version=(3, 2, 0)) as immich, client_for(immich) as api:
        alice, bob, carol = (immich.add_person(n) for n in ("Alice", "Bob", "Carol"))
        with_alice = immich.add_asset(people=[alice], taken_at=T0)
        with_bob = immich.add_asset(people=[bob], taken_at=T0 + timedelta(minutes=1))
        with_carol = immich.add_asset(people=[carol], taken_at=T0 + timedelta(minutes=2))
        video = immich.add_asset(type="VIDEO", taken_at=T0 + timedelta(minutes=3))
        alice_and_carol = immich.add_asset(
            people=[alice, carol], taken_at=T0 + timedelta(minutes=4)
        )

        any_of = await search(api, filter={"personIds": {"any": [alice, bob]}})
        assert set(ids(any_of)) == {with_alice, with_bob, alice_and_carol}
        none_of = await search(api, filter={"personIds": {"none": [carol]}})
        assert set(ids(none_of)) == {with_alice, with_bob, video}
        either = await search(
            api,
            filter={
                "or": [
                    {"personIds": {"any": [alice]}},
                    {"type": {"eq": "VIDEO"}, "hasPeople": {"eq": False}},
                ]
            },
        )
        assert set(ids(either)) == {with_alice, video, alice_and_carol}
        window = await search(
            api, filter={"createdAt": {"gte": iso(T0 - timedelta(days=1))}}, size=1000
        )
        assert len(window["items"]) == 5

        seen: list[str] = []
        body: dict[str, Any] = {"filter": {"hasPeople": {"eq": True}}, "size": 2}
        for _ in range(10):
            page = await search(api, **body)
            seen += ids(page)
            if page["nextCursor"] is None:
                break
            assert page["nextPage"] == page["nextCursor"] or "cursor" not in body
            body["cursor"] = page["nextCursor"]
        assert seen == [alice_and_carol, with_carol, with_bob, with_alice]

        stripped = await search(
            api, filter={"people": {"any": []}, "type": {"eq": "VIDEO", "like": "x"}}
        )
        assert ids(stripped) == [video]
        bad = await api.post("/search/metadata", json={"filter": {"personIds": {"any": "x"}}})
        assert bad.json() == {
            "message": "Validation failed",
            "errors": [
                {
                    "code": "custom",
                    "path": ["filter", "personIds", "any"],
                    "message": "must be an array",
                }
            ],
        }
        bad_cursor = await api.post("/search/metadata", json={"cursor": "garbage"})
        assert bad_cursor.status_code == 400


# --- people, faces, albums, uploads ------------------------------------------------------


async def test_people_lists_only_people_with_visible_faces(immich, api):
    alice = immich.add_person("alice")
    bob = immich.add_person("Bob")
    faceless = immich.add_person("Alicia")
    no_thumb = immich.add_person("Zed", with_thumbnail=False)
    hidden = immich.add_person("Hidden", hidden=True)
    immich.add_asset(people=[alice, bob, no_thumb, hidden])
    immich.add_asset(people=[faceless], trashed=True)

    listed = (await api.get("/people", params={"withHidden": "false", "size": 1})).json()
    assert [p["name"] for p in listed["people"]] == ["alice"]
    assert (listed["total"], listed["hidden"], listed["hasNextPage"]) == (2, 1, True)
    second = (await api.get("/people", params={"page": 2, "size": 1})).json()
    assert [p["id"] for p in second["people"]] == [bob] and second["hasNextPage"] is False
    with_hidden = (await api.get("/people", params={"withHidden": "true"})).json()
    assert with_hidden["total"] == 3

    found = (await api.get("/search/person", params={"name": "ALI"})).json()
    assert {p["id"] for p in found} == {alice, faceless}
    stats = (await api.get(f"/people/{faceless}/statistics")).json()
    assert stats == {"assets": 0}
    missing = await api.get(f"/people/{no_thumb}/thumbnail")
    assert missing.status_code == 404 and missing.json()["statusCode"] == 404


async def test_person_search_is_fuzzy_like_immichs(immich, api):
    """Immich: f_unaccent(name) %> f_unaccent(query) (pg_trgm word similarity >= 0.5),
    hidden people only with withHidden, at most 100 answers, best first."""
    alice, carol = immich.add_person("Alice"), immich.add_person("Carol")
    zoe = immich.add_person("Zoë")
    dave = immich.add_person("Dave", hidden=True)

    async def names(name: str, **params: str) -> list[str]:
        response = await api.get("/search/person", params={"name": name, **params})
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()]

    assert await names("lice") == [alice]
    assert await names("Caroll") == [carol]
    assert await names("ar") == []
    assert await names("ZOE") == [zoe]
    assert await names("Dave") == []
    assert await names("Dave", withHidden="true") == [dave]
    empty = await api.get("/search/person", params={"name": ""})
    assert empty.status_code == 400

    many = [immich.add_person(f"Anna {n}") for n in range(120)]
    anna = immich.add_person("Anna")
    found = await names("anna")
    assert len(found) == 100 and found[0] == anna and set(found[1:]) <= set(many)


async def test_unknown_ids(immich, api):
    unknown = "6f1c7c2e-8a3b-4c5d-9e6f-7a8b9c0d1e2f"
    assert (await api.get("/faces", params={"id": unknown})).status_code == 400
    assert (await api.get("/faces", params={"id": "not-a-uuid"})).status_code == 400
    thumbnail = await api.get(f"/assets/{unknown}/thumbnail")
    assert thumbnail.status_code == 400
    assert thumbnail.json()["message"] == "Not found or no asset.view access"
    assert (await api.get(f"/assets/{unknown}")).status_code == 400
    assert (await api.get(f"/people/{unknown}")).status_code == 400
    photo = immich.add_asset()
    assert (await api.get("/faces", params={"id": photo})).json() == []


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def test_oddities_of_each_version(version: tuple[int, int, int]):
    """What a real 2.7.5 and 3.1.0 answered where they differ."""
    v3 = version >= (3, 0, 0)
    unknown = "6f1c7c2e-8a3b-4c5d-9e6f-7a8b9c0d1e2f"
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        video = immich.add_asset(type="VIDEO", created_at=T0)
        photo = immich.add_asset(created_at=T0)
        durations = {a["id"]: a["duration"] for a in (await search(api))["items"]}
        assert durations[video] == (12_000 if v3 else "00:00:12.000")
        assert durations[photo] == (None if v3 else "0:00:00.00000")

        as_text = await api.post("/search/metadata", json={"page": "1", "size": 10})
        no_zone = await api.post("/search/metadata", json={"createdAfter": "2025-06-01T10:00:00"})
        too_big = await api.post("/search/metadata", json={"size": 1001})
        if v3:
            assert as_text.json() == {
                "message": "Validation failed",
                "errors": [{"code": "custom", "path": ["page"], "message": "must be a number"}],
            }
            assert no_zone.status_code == 400
            assert no_zone.json()["errors"][0]["path"] == ["createdAfter"]
            assert too_big.json()["errors"][0]["path"] == ["size"]
        else:
            assert as_text.status_code == 200 and no_zone.status_code == 200
            assert too_big.json() == {
                "message": ["size must not be greater than 1000"],
                "error": "Bad Request",
                "statusCode": 400,
                "correlationId": too_big.json()["correlationId"],
            }

        thumbnail = await api.get(f"/assets/{unknown}/thumbnail", params={"size": "preview"})
        assert thumbnail.status_code == 400
        assert thumbnail.json()["message"] == "Not found or no asset.view access"
        face = await api.get(f"/people/{unknown}/thumbnail")
        assert face.status_code == (404 if v3 else 400)
        if v3:
            assert face.json() == {"message": "Person thumbnail not found"}


async def test_faces_carry_their_person(immich, api):
    alice = immich.add_person("Alice")
    photo = immich.add_asset(people=[alice], unrecognised_faces=1)
    faces = (await api.get("/faces", params={"id": photo})).json()
    assert sorted((f["person"] or {}).get("name", "?") for f in faces) == ["?", "Alice"]


async def test_album_adds_each_id_once(immich, api):
    photo, other = immich.add_asset(), immich.add_asset()
    album = immich.add_album("Discord", [photo])
    unknown = "6f1c7c2e-8a3b-4c5d-9e6f-7a8b9c0d1e2f"
    results = await api.put(f"/albums/{album}/assets", json={"ids": [photo, other, unknown]})
    assert results.json() == [
        {"id": photo, "success": False, "error": "duplicate"},
        {"id": other, "success": True},
        {"id": unknown, "success": False, "error": "no_permission"},
    ]
    assert immich.album_asset_ids(album) == [photo, other]
    assert (await api.get(f"/albums/{album}")).json()["assetCount"] == 2


async def test_upload_creates_once_then_reports_the_duplicate(immich, api):
    fields = {
        "fileCreatedAt": iso(T0),
        "fileModifiedAt": iso(T0),
        "deviceAssetId": "discord-1",
        "deviceId": "immich-discord-sidecar",
        "description": "from Discord",
    }
    files = {"assetData": ("clip.mp4", b"not really a video")}
    first = await api.post("/assets", data=fields, files=files)
    assert first.status_code == 201 and first.json()["status"] == "created"
    again = await api.post("/assets", data=fields, files=files)
    assert again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "status": "duplicate"}
    asset = (await api.get(f"/assets/{first.json()['id']}")).json()
    assert (asset["type"], asset["originalFileName"]) == ("VIDEO", "clip.mp4")
    assert asset["fileCreatedAt"] == "2025-06-01T12:00:00.000Z"
    assert immich.asset_description(asset["id"]) == "from Discord"

    without_device = {k: v for k, v in fields.items() if not k.startswith("device")}
    refused = await api.post("/assets", data=without_device, files=files)
    assert refused.status_code == 400
    assert "deviceAssetId must be a string" in refused.json()["message"]


async def test_upload_on_3x_needs_no_device_fields():
    async with FakeImmich(version=(3, 0, 3)) as immich, client_for(immich) as api:
        fields = {"fileCreatedAt": iso(T0), "fileModifiedAt": iso(T0)}
        response = await api.post("/assets", data=fields, files={"assetData": ("a.png", b"png")})
        assert response.status_code == 201


async def test_update_sets_the_description(immich, api):
    photo = immich.add_asset()
    response = await api.put(f"/assets/{photo}", json={"description": "Beach day"})
    assert response.json()["exifInfo"]["description"] == "Beach day"
    ignored = await api.put(f"/assets/{photo}", json={"title": "x", "description": "Dune"})
    assert ignored.status_code == 200 and ignored.json()["exifInfo"]["description"] == "Dune"


# --- auth, recording, faults -------------------------------------------------------------


async def test_auth_is_required_except_for_ping_and_version(immich):
    async with client_for(immich, key=None) as anonymous, client_for(immich, key="wrong") as bad:
        assert (await anonymous.get("/server/ping")).json() == {"res": "pong"}
        assert (await anonymous.get("/server/version")).json() == {
            "major": 2,
            "minor": 7,
            "patch": 5,
        }
        assert (await anonymous.get("/people")).status_code == 401
        refused = await bad.post("/search/metadata", json={})
    assert refused.status_code == 401
    body = refused.json()
    assert body["message"] == "Invalid API key" and body["error"] == "Unauthorized"
    assert body["statusCode"] == 401 and body["correlationId"]
    assert "wrong" not in refused.text


async def test_missing_permission_is_a_403_naming_it():
    async with (
        FakeImmich(permissions=["asset.read", "asset.view"]) as immich,
        client_for(immich) as api,
    ):
        assert (await api.post("/search/metadata", json={})).status_code == 200
        denied = await api.get("/people")
        assert denied.status_code == 403
        assert denied.json()["message"] == "Missing required permission: person.read"
        me = (await api.get("/api-keys/me")).json()
        assert me["permissions"] == ["asset.read", "asset.view"]
        assert (await api.get("/users/me")).status_code == 403  # user.read
        immich.permissions.append("user.read")  # a key edited in Immich: in force at once
        user = (await api.get("/users/me")).json()
        assert user["id"] == immich.key_user_id and user["name"] == "Admin"


async def test_every_api_request_is_recorded(immich, api):
    await api.get("/people", params={"size": 5})
    response = await api.post("/search/metadata", json={"withPeople": True})
    await api.get("/nowhere")
    assert [(r.method, r.path, r.status) for r in immich.requests] == [
        ("GET", "/api/people", 200),
        ("POST", "/api/search/metadata", 200),
        ("GET", "/api/nowhere", 404),
    ]
    assert immich.requests[0].query == {"size": "5"}
    assert immich.requests[1].json == {"withPeople": True}
    assert immich.requests[1].response_bytes == len(response.content)
    assert len(immich.api_requests("POST", "/api/search/metadata")) == 1
    immich.reset_requests()
    assert immich.requests == []


async def fault_statuses(seed: int, rate: float, n: int = 200) -> list[int]:
    async with FakeImmich() as immich, client_for(immich) as api:
        immich.faults = Faults(rate=rate, kinds=("500", "503", "429"), seed=seed)
        for _ in range(n):
            await api.get("/server/ping")
        return [r.status for r in immich.requests]


async def test_faults_hit_the_configured_share_deterministically():
    first = await fault_statuses(seed=7, rate=0.3)
    assert first == await fault_statuses(seed=7, rate=0.3)
    assert first != await fault_statuses(seed=8, rate=0.3)
    counts = Counter(first)
    faulted = len(first) - counts[200]
    assert 0.2 * len(first) <= faulted <= 0.4 * len(first)
    assert {500, 503, 429} <= set(counts)


async def test_each_fault_kind_behaves_as_described(immich, api):
    immich.faults = Faults(rate=1.0, kinds=("429",), retry_after=3)
    limited = await api.get("/server/ping")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    immich.faults = Faults(rate=1.0, kinds=("503",))
    unavailable = await api.get("/server/ping")
    assert unavailable.status_code == 503 and unavailable.headers["content-type"].startswith(
        "text/html"
    )
    immich.faults = Faults(rate=1.0, kinds=("drop",))
    with pytest.raises(httpx.RemoteProtocolError):
        await api.get("/server/ping")
    immich.faults = Faults(rate=1.0, kinds=("timeout",), timeout_delay=5)
    with pytest.raises(httpx.ReadTimeout):
        await api.get("/server/ping", timeout=0.2)
    immich.faults = Faults(rate=1.0, kinds=("500",), paths="/api/people")
    assert (await api.get("/server/ping")).status_code == 200
    assert (await api.get("/people")).status_code == 500
    immich.faults = None
    assert [r.status for r in immich.requests] == [429, 503, 0, 0, 200, 500]
    with pytest.raises(ValueError, match="fault kinds"):
        Faults(rate=0.5, kinds=("boom",))


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 0, 3)], ids=["2.7.5", "3.0.3"])
async def test_ties_in_taken_time_make_offset_paging_lose_assets_before_3(version):
    """Immich 2.x orders search results by fileCreatedAt alone: assets taken at the same moment
    come back in a different order on each request, so an offset pager repeats some and never
    sees others. 3.x breaks the tie by id."""
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        added = immich.add_assets_bulk(1_100, created_at=T0, taken_at=T0 - timedelta(days=3))
        first = await search(api, size=1000, page=1)
        second = await search(api, size=1000, page=2)
        assert (len(first["items"]), first["nextPage"], second["nextPage"]) == (1000, "2", None)
        seen = ids(first) + ids(second)
        assert len(seen) == 1_100
        if version < (3, 0, 0):
            assert len(set(seen)) < 1_000 + 50, "2.x returned the ties in the same order twice"
            assert ids(await search(api, size=5)) != ids(await search(api, size=5))
        else:
            assert set(seen) == set(added)
            assert ids(await search(api, size=5)) == ids(await search(api, size=5))


async def test_bulk_uploads_never_share_a_moment(immich, api):
    first, second, third = immich.add_assets_bulk(3, created_at=T0)
    items = (await search(api, withPeople=False, order="asc"))["items"]
    assert [(i["id"], i["createdAt"], i["fileCreatedAt"]) for i in items] == [
        (first, "2025-06-01T11:59:59.998Z", "2025-06-01T11:59:59.998Z"),
        (second, "2025-06-01T11:59:59.999Z", "2025-06-01T11:59:59.999Z"),
        (third, "2025-06-01T12:00:00.000Z", "2025-06-01T12:00:00.000Z"),
    ]
    close = immich.add_assets_bulk(
        3, created_at=T0 + timedelta(hours=1), upload_gap=timedelta(microseconds=400)
    )
    late = iso(T0 + timedelta(hours=1) - timedelta(milliseconds=1))
    shown = {i["id"]: i["createdAt"] for i in (await search(api, createdAfter=late))["items"]}
    # Immich keeps microseconds and shows milliseconds: 0.9992 and 0.9996 s both show .999
    assert [shown[a] for a in close] == [
        "2025-06-01T12:59:59.999Z",
        "2025-06-01T12:59:59.999Z",
        "2025-06-01T13:00:00.000Z",
    ]
    exactly = await search(api, createdAfter=late, createdBefore=late)
    assert ids(exactly) == []  # nothing was uploaded at .999000 itself


async def test_a_large_library_is_quick_to_build_and_cheap_to_page(immich, api):
    immich.add_assets_bulk(10_000, created_at=T0)
    pages = 0
    page: str | None = "1"
    total = 0
    while page is not None and pages < 20:
        result = await search(api, size=1000, page=int(page))
        total += result["count"]
        page = result["nextPage"]
        pages += 1
    assert (total, pages, len(immich.requests)) == (10_000, 10, 10)


# --- control API and CLI -----------------------------------------------------------------


async def test_control_api_drives_the_fake_from_outside(immich, api):
    async with httpx.AsyncClient(base_url=f"{immich.url}/_fake") as control:
        alice = (await control.post("/people", json={"name": "Alice"})).json()["id"]
        photo = (
            await control.post("/assets", json={"created_at": iso(T0), "file_name": "a.jpg"})
        ).json()["id"]
        bulk = (await control.post("/assets/bulk", json={"n": 3, "type": "VIDEO"})).json()
        assert len(bulk["ids"]) == 3
        assert (
            await control.post("/recognise", json={"asset_id": photo, "person_id": alice})
        ).status_code == 200
        bad = await control.post("/recognise", json={"asset_id": photo, "person_id": "nobody"})
        assert bad.status_code == 400 and "unknown person" in bad.json()["message"]

        assert ids(await search(api, personIds=[alice])) == [photo]
        assert len(ids(await search(api, type="VIDEO"))) == 3
        recorded = (await control.get("/requests")).json()
        assert [r["path"] for r in recorded] == ["/api/search/metadata"] * 2
        assert recorded[0]["json"] == {"personIds": [alice]}
        await control.post("/reset-requests")
        assert (await control.get("/requests")).json() == []

        await control.post("/faults", json={"rate": 1.0, "kinds": ["500"], "seed": 1})
        assert (await api.get("/server/ping")).status_code == 500
        await control.post("/faults", json={})
        assert (await api.get("/server/ping")).status_code == 200


def test_cli_prints_its_url_and_stops_on_sigterm():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fake_immich", "--port", "0", "--version", "3.2.0"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        version = httpx.get(f"{url}/api/server/version", timeout=5).json()
        assert (version["major"], version["minor"]) == (3, 2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- images ------------------------------------------------------------------------------


def test_images_are_valid_and_differ_by_colour():
    red, blue = (255, 0, 0), (0, 0, 255)
    png = images.png(red, 2, 2)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    idat_length = struct.unpack(">I", png[33:37])[0]
    pixels = zlib.decompress(png[41 : 41 + idat_length])
    assert (width, height, pixels) == (2, 2, b"\x00" + bytes(red) * 2 + b"\x00" + bytes(red) * 2)

    jpeg = images.jpeg(red)
    assert jpeg.startswith(b"\xff\xd8\xff\xe0") and jpeg.endswith(b"\xff\xd9")
    assert images.jpeg(red) != images.jpeg(blue)
    webp = images.webp(red)
    assert webp[:4] == b"RIFF" and webp[8:16] == b"WEBPVP8L"
    assert struct.unpack("<I", webp[4:8])[0] == len(webp) - 8
    assert images.webp(red) != images.webp(blue)
    assert images.colour_for("a") == images.colour_for("a") != images.colour_for("b")


# --- external libraries: a scan inserts a batch without exif rows --------------------------


def shown(moment: datetime) -> str:
    """A moment as Immich shows it: milliseconds and Z."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 0, 3)], ids=["2.7.5", "3.0.3"])
async def test_a_library_scan_is_invisible_to_exif_searches_until_extraction(version):
    """Like Immich's library scan (one INSERT, no asset_exif row until metadata extraction):
    one shared createdAt; the flat search with withExif, search/random and the timeline bucket
    inner-join the exif table; withExif false, statistics and the bucket counts do not."""
    spec = require_spec(SPEC_FOR[version])
    clock = Clock(T0)
    async with FakeImmich(version=version, clock=clock) as immich, client_for(immich) as api:
        mtime, exif_date = T0 - timedelta(days=2), T0 - timedelta(days=400)
        scanned = immich.library_scan(
            5,
            created_at=T0,
            taken_at=mtime,
            exif_taken_at=exif_date,
            extract_after=timedelta(minutes=5),
        )
        album = immich.add_album("Trip", scanned[:2])
        assert (await search(api, withExif=True))["items"] == []
        assert (await api.post("/search/random", json={"withExif": True})).json() == []
        plain = (await search(api, withExif=False))["items"]
        assert {i["id"] for i in plain} == set(scanned)
        assert {(i["createdAt"], i["updatedAt"], i["fileCreatedAt"]) for i in plain} == {
            (shown(T0), shown(T0), shown(mtime))
        }
        assert all("exifInfo" not in i for i in plain)
        body = {"createdAfter": iso(T0), "createdBefore": iso(T0), "visibility": "timeline"}
        validate_request(spec, "POST", "/api/search/statistics", {}, body, None)
        stats = await api.post("/search/statistics", json=body)
        validate_response(spec, "POST", "/api/search/statistics", 200, stats.json())
        assert stats.json() == {"total": 5}
        alone = (await api.get(f"/assets/{scanned[0]}")).json()
        assert "exifInfo" not in alone
        counts = (await api.get("/timeline/buckets", params={"albumId": album})).json()
        bucket = (
            await api.get(
                "/timeline/bucket", params={"albumId": album, "timeBucket": counts[0]["timeBucket"]}
            )
        ).json()
        assert (counts[0]["count"], bucket["id"]) == (2, [])

        clock.now = T0 + timedelta(minutes=5, milliseconds=2)  # three of five read so far
        read = (await search(api, withExif=True, order="asc"))["items"]
        assert {i["id"] for i in read} == set(scanned[:3])
        # Each extraction is an update of its own: updatedAt moves, one asset per millisecond.
        assert sorted(i["updatedAt"] for i in read) == [
            shown(T0 + timedelta(minutes=5, milliseconds=n)) for n in range(3)
        ]
        assert {i["fileCreatedAt"] for i in read} == {shown(exif_date)}
        assert all(i["exifInfo"] for i in read)
        clock.now += timedelta(seconds=1)
        assert immich.unread_count() == 0
        assert len((await search(api, withExif=True))["items"]) == 5


async def test_the_3_2_filter_form_left_joins_exif():
    clock = Clock(T0)
    async with FakeImmich(version=(3, 2, 0), clock=clock) as immich, client_for(immich) as api:
        scanned = immich.library_scan(2, created_at=T0, extract_after=timedelta(hours=1))
        found = await search(api, filter={"createdAt": {"gte": iso(T0)}}, withExif=True)
        assert {i["id"] for i in found["items"]} == set(scanned)
        assert all("exifInfo" not in i for i in found["items"])
        assert (await search(api, createdAfter=iso(T0), withExif=True))["items"] == []


async def test_extraction_paused_and_resumed_by_control_calls(immich, api):
    async with httpx.AsyncClient(base_url=f"{immich.url}/_fake") as control:
        assert (await control.post("/extraction", json={"paused": True})).json() == {
            "paused": True,
            "unread": 0,
        }
        scan = await control.post(
            "/library-scan", json={"n": 4, "created_at": iso(T0), "extract_after_seconds": 0}
        )
        scanned = scan.json()["ids"]
        assert len(scanned) == 4
        assert (await search(api, withExif=True))["items"] == []
        assert immich.unread_count() == 4  # paused: the extraction time passes, nothing is read
        resumed = (await control.post("/extraction", json={"paused": False})).json()
        assert resumed["paused"] is False
        await asyncio.sleep(0.02)
        assert {i["id"] for i in (await search(api, withExif=True))["items"]} == set(scanned)
        assert (await control.post("/extraction", json={"paused": "yes"})).status_code == 400


async def test_a_library_batch_shares_one_created_at_and_2x_shuffles_its_ties():
    async with FakeImmich(version=(2, 7, 5)) as immich, client_for(immich) as api:
        immich.library_scan(30, created_at=T0, extract_after=timedelta(0))
        first = await search(api, withExif=True, size=10)
        assert {i["createdAt"] for i in first["items"]} == {shown(T0)}
        assert ids(first) != ids(await search(api, withExif=True, size=10))


# -- workflows (push) ---------------------------------------------------------------------------

WEBHOOK_STEP: dict[str, Any] = {
    "method": "immich-plugin-core#webhook",
    "config": {
        "url": "",
        "method": "POST",
        "headerName": "X-Immich-Sidecar-Secret",
        "headerValue": "0123456789abcdef",
    },
}


class Receiver:
    """A webhook receiver on 127.0.0.1 that records what arrives and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.status = status
        self.seen: list[tuple[float, dict[str, str], Any]] = []
        self.url = ""
        self._runner: Any = None

    async def __aenter__(self) -> Receiver:
        import asyncio

        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            self.seen.append(
                (asyncio.get_running_loop().time(), dict(request.headers), await request.json())
            )
            return web.Response(status=self.status)

        app = web.Application()
        app.router.add_post("/hook", handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


async def wait_for(condition: Any, limit: float = 5.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    started = loop.time()
    while not condition():
        assert loop.time() - started < limit, "timed out"
        await asyncio.sleep(0.01)


def workflow_body(url: str, trigger: str = "AssetCreate") -> dict[str, Any]:
    step = {**WEBHOOK_STEP, "config": {**WEBHOOK_STEP["config"], "url": url}}
    return {"name": "hook", "trigger": trigger, "enabled": True, "steps": [step]}


async def test_v3_workflow_create_answers_without_steps_and_get_shows_them() -> None:
    spec = require_spec("3.0.3")
    async with FakeImmich(version=(3, 1, 0)) as immich, client_for(immich) as http:
        body = workflow_body("http://127.0.0.1:9/hook")
        validate_request(spec, "post", "/api/workflows", {}, body, None)
        created = await http.post("/workflows", json=body)
        assert created.status_code == 201 and created.json()["steps"] == []
        validate_response(spec, "post", "/api/workflows", 201, created.json())
        listed = (await http.get("/workflows")).json()
        validate_response(spec, "get", "/api/workflows", 200, listed)
        assert listed[0]["steps"][0]["method"] == "immich-plugin-core#webhook"
        assert listed[0]["steps"][0]["config"]["url"] == "http://127.0.0.1:9/hook"


async def test_v3_webhook_fires_for_the_owners_uploads_with_immichs_request() -> None:
    async with FakeImmich(version=(3, 1, 0)) as immich, Receiver() as receiver:
        async with client_for(immich) as http:
            for trigger in ("AssetCreate", "AssetMetadataExtraction"):
                await http.post("/workflows", json=workflow_body(receiver.url, trigger))
        other = immich.add_user("Bob")
        immich.add_asset(owner=other)  # not the workflows' owner: nothing is sent
        asset = immich.add_asset()
        await wait_for(lambda: len(receiver.seen) == 2)
        by_trigger = {body["trigger"]: (headers, body) for _, headers, body in receiver.seen}
        headers, created = by_trigger["AssetCreate"]
        _, metadata = by_trigger["AssetMetadataExtraction"]
        assert headers["User-Agent"] == "immich-server/3.1.0"
        assert headers["Content-Type"].startswith("application/json")
        assert headers["X-Immich-Sidecar-Secret"] == "0123456789abcdef"
        assert created["type"] == "AssetV1" and created["trigger"] == "AssetCreate"
        assert metadata["trigger"] == "AssetMetadataExtraction"
        assert created["data"]["asset"]["id"] == asset
        assert created["data"]["asset"]["checksum"]["type"] == "Buffer"
        assert "dateTimeOriginal" not in created["data"]["asset"]["exifInfo"]
        assert metadata["data"]["asset"]["exifInfo"]["dateTimeOriginal"]
        # Sent ~20 ms after the upload (not asserted: arrival times depend on the machine's load).
        await wait_for(lambda: len(immich.workflows.calls) == 2)
        assert sorted(c.trigger for c in immich.workflows.calls) == [
            "AssetCreate",
            "AssetMetadataExtraction",
        ]
        assert "people" not in created["data"]["asset"]  # no person, album or user names


async def test_v3_webhook_is_not_retried_and_its_answer_is_ignored() -> None:
    async with FakeImmich(version=(3, 1, 0)) as immich, Receiver(status=500) as receiver:
        async with client_for(immich) as http:
            await http.post("/workflows", json=workflow_body(receiver.url))
            await http.post("/workflows", json=workflow_body("http://127.0.0.1:9/down"))
        immich.add_asset()
        await wait_for(lambda: len(immich.workflows.calls) == 2)
        import asyncio

        await asyncio.sleep(0.2)
        assert len(receiver.seen) == 1  # a 500 is not retried
        assert sorted(str(c.status) for c in immich.workflows.calls) == ["500", "None"]
        assert immich.workflows.errors == ["Error executing workflow: ClientConnectorError"]


async def test_v2_has_workflows_but_no_webhook_action() -> None:
    spec = require_spec("2.7.3")
    async with FakeImmich(version=(2, 7, 5)) as immich, client_for(immich) as http:
        plugins = (await http.get("/plugins")).json()
        validate_response(spec, "get", "/api/plugins", 200, plugins)
        methods = [a["methodName"] for p in plugins for a in p["actions"]]
        assert methods and not any("webhook" in m.lower() for m in methods)
        refused = await http.post("/workflows", json=workflow_body("http://127.0.0.1:9/hook"))
        assert refused.status_code == 400
        action = plugins[0]["actions"][0]["id"]
        body = {
            "name": "archive",
            "triggerType": "AssetCreate",
            "filters": [],
            "actions": [{"pluginActionId": action}],
        }
        validate_request(spec, "post", "/api/workflows", {}, body, None)
        created = await http.post("/workflows", json=body)
        assert created.status_code == 201
        validate_response(spec, "post", "/api/workflows", 201, created.json())
        immich.add_asset()
        assert immich.workflows.calls == []


async def test_v3_without_its_core_plugin_knows_no_webhook_step() -> None:
    """A 3.1.0 whose image lacks plugins/immich-plugin-core: no plugin listed, and a workflow
    with the webhook step is refused with Immich's own words (checked on a real server)."""
    spec = require_spec("3.0.3")
    async with (
        FakeImmich(version=(3, 1, 0), core_plugin=False) as immich,
        client_for(immich) as http,
    ):
        plugins = (await http.get("/plugins")).json()
        validate_response(spec, "get", "/api/plugins", 200, plugins)
        assert plugins == []
        refused = await http.post("/workflows", json=workflow_body("http://127.0.0.1:9/hook"))
        assert refused.status_code == 400
        assert refused.json() == {"message": "Unknown method immich-plugin-core#webhook"}
        bare = await http.post("/workflows", json={"trigger": "AssetCreate", "steps": []})
        assert bare.status_code == 201  # a workflow without steps names no method
        update = await http.put(
            f"/workflows/{bare.json()['id']}", json=workflow_body("http://127.0.0.1:9/hook")
        )
        assert update.json() == {"message": "Unknown method immich-plugin-core#webhook"}
    async with FakeImmich(version=(3, 1, 0)) as immich, client_for(immich) as http:
        (core,) = (await http.get("/plugins")).json()
        assert core["name"] == "immich-plugin-core"
        assert [m["key"] for m in core["methods"]] == ["immich-plugin-core#webhook"]


async def test_workflows_need_the_workflow_permissions() -> None:
    async with (
        FakeImmich(version=(3, 1, 0), permissions=["asset.read"]) as immich,
        client_for(immich) as http,
    ):
        answer = await http.get("/workflows")
        assert answer.status_code == 403
        assert "workflow.read" in answer.json()["message"]


# -- several users, each with a key of their own (people, partners and memories per user)

DAD_KEY, MUM_KEY = "dad-key", "mum-key"


async def test_each_key_sees_its_own_users_people_and_assets(immich):
    dad = immich.add_user("Dad", api_key=DAD_KEY)
    mum = immich.add_user("Mum", api_key=MUM_KEY)
    dads_grandma = immich.add_person("Grandma", owner=dad)
    mums_grandma = immich.add_person("Grandma", owner=mum)
    dads = immich.add_asset(owner=dad, people=[dads_grandma])
    mums = immich.add_asset(owner=mum, people=[mums_grandma])
    async with client_for(immich, key=DAD_KEY) as as_dad, client_for(immich, key=MUM_KEY) as as_mum:
        me = (await as_dad.get("/users/me")).json()
        assert (me["id"], me["name"]) == (dad, "Dad")
        assert (await as_mum.get("/users/me")).json()["id"] == mum
        assert (await as_dad.get("/api-keys/me")).json()["id"] != (
            await as_mum.get("/api-keys/me")
        ).json()["id"]
        found = (await as_dad.get("/search/person", params={"name": "Grandma"})).json()
        assert [p["id"] for p in found] == [dads_grandma]
        people = (await as_mum.get("/people")).json()["people"]
        assert [p["id"] for p in people] == [mums_grandma]
        assert ids(await search(as_dad)) == [dads]
        assert ids(await search(as_mum, personIds=[mums_grandma])) == [mums]
        # Another user's person is not there for this key (Immich's access check).
        assert (await as_dad.get(f"/people/{mums_grandma}")).status_code == 400


async def test_partner_sharing_in_timeline_widens_the_search_but_not_the_people(immich):
    dad = immich.add_user("Dad", api_key=DAD_KEY)
    mum = immich.add_user("Mum", api_key=MUM_KEY)
    leo = immich.add_user("Leo", api_key="leo-key")
    dads_grandma = immich.add_person("Grandma", owner=dad)
    mums_grandma = immich.add_person("Grandma", owner=mum)
    dads = immich.add_asset(owner=dad, people=[dads_grandma])
    immich.add_partner(dad, mum, in_timeline=True)
    immich.add_partner(dad, leo, in_timeline=False)
    async with (
        client_for(immich, key=MUM_KEY) as as_mum,
        client_for(immich, key="leo-key") as as_leo,
    ):
        assert ids(await search(as_mum)) == [dads]  # Dad's photo in Mum's timeline
        assert ids(await search(as_mum, withPeople=True, personIds=[mums_grandma])) == []
        assert ids(await search(as_leo)) == []  # shared without "show in timeline"
        random = (await as_mum.post("/search/random", json={})).json()
        assert [a["id"] for a in random] == [dads]
        # The face on Dad's photo is Dad's person, whoever looks at it.
        item = (await search(as_mum, withPeople=True))["items"][0]
        assert [p["id"] for p in item["people"]] == [dads_grandma]


async def test_memories_are_made_per_user_from_their_own_photos(immich):
    dad = immich.add_user("Dad", api_key=DAD_KEY)
    mum = immich.add_user("Mum", api_key=MUM_KEY)
    today = datetime.now(UTC).date()
    taken = datetime(today.year - 4, today.month, today.day, 9, tzinfo=UTC)  # 4: Feb 29 too
    dads = immich.add_asset(owner=dad, taken_at=taken)
    mums = immich.add_asset(owner=mum, taken_at=taken)
    immich.add_partner(dad, mum)
    immich.run_memory_job(today)
    async with client_for(immich, key=DAD_KEY) as as_dad, client_for(immich, key=MUM_KEY) as as_mum:
        day = {"for": taken.replace(year=today.year).date().isoformat()}
        dad_memories = (await as_dad.get("/memories", params=day)).json()
        mum_memories = (await as_mum.get("/memories", params=day)).json()
    assert [[a["id"] for a in m["assets"]] for m in dad_memories] == [[dads]]
    assert [[a["id"] for a in m["assets"]] for m in mum_memories] == [[mums]]
    assert mum_memories[0]["ownerId"] == mum


async def test_a_revoked_key_answers_401_until_restored(immich):
    immich.add_user("Mum", api_key=MUM_KEY)
    async with client_for(immich, key=MUM_KEY) as as_mum:
        immich.revoke_key(MUM_KEY)
        assert (await as_mum.post("/search/metadata", json={})).status_code == 401
        immich.restore_key(MUM_KEY)
        assert (await as_mum.post("/search/metadata", json={})).status_code == 200


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 0, 3)])
async def test_another_users_key_answers_as_the_specs_say(version):
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich:
        immich.add_user("Mum", api_key=MUM_KEY)
        async with client_for(immich, key=MUM_KEY) as as_mum:
            for path in ("/users/me", "/api-keys/me", "/people", "/memories"):
                response = await as_mum.get(path)
                validate_response(spec, "GET", "/api" + path, 200, response.json())


# --- shared links and video playback (issue 26) -------------------------------------------


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 0, 3)], ids=lambda v: ".".join(map(str, v)))
async def test_a_shared_link_matches_the_spec_and_opens_without_a_key(version):
    """``POST /shared-links`` answers 201 with the spec's shape and a base64url key; the share
    page's own call (``GET /shared-links/me?key=``) needs no API key and shows the assets;
    ``showMetadata: false`` hides exif and turns downloads off, as Immich does."""
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        photos = [immich.add_asset(city="Paris"), immich.add_asset()]
        body = {
            "type": "INDIVIDUAL",
            "assetIds": photos,
            "expiresAt": iso(datetime.now(UTC) + timedelta(days=30)),
            "allowDownload": True,
            "showMetadata": False,
            "description": "immich-sidecar",
        }
        validate_request(spec, "POST", "/api/shared-links", {}, body, None)
        created = await api.post("/shared-links", json=body)
        assert created.status_code == 201, created.text
        link = created.json()
        validate_response(spec, "POST", "/api/shared-links", 201, link)
        assert link["allowDownload"] is False and link["showMetadata"] is False
        assert [a["id"] for a in link["assets"]] == photos
        assert all("exifInfo" not in a for a in link["assets"])
        assert len(base64_decoded(link["key"])) == 50
        async with client_for(immich, key=None) as anyone:
            opened = await anyone.get("/shared-links/me", params={"key": link["key"]})
            wrong = await anyone.get("/shared-links/me", params={"key": "not-a-key"})
        assert opened.status_code == 200 and opened.json()["id"] == link["id"]
        assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid share key"
        listed = await api.get("/shared-links")
        validate_response(spec, "GET", "/api/shared-links", 200, listed.json())
        assert (await api.delete(f"/shared-links/{link['id']}")).status_code == 204
        assert immich.shared_links.links == {}


def base64_decoded(key: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))


async def test_shared_links_need_the_permission_and_share_access(immich):
    """Without ``sharedLink.create`` the key gets 403 naming it; an asset of another user
    (not a partner) or an album the key's user does not own cannot be shared (400); an
    expired link no longer opens."""
    mine = immich.add_asset()
    bob = immich.add_user("Bob", api_key="bob-key")
    his = immich.add_asset(owner=bob)
    album = immich.add_album("Holiday", [his], owner=bob)
    async with client_for(immich) as api:
        refused = await api.post("/shared-links", json={"type": "INDIVIDUAL", "assetIds": [his]})
        not_owner = await api.post("/shared-links", json={"type": "ALBUM", "albumId": album})
        expired = await api.post(
            "/shared-links",
            json={"type": "INDIVIDUAL", "assetIds": [mine], "expiresAt": iso(T0)},
        )
    assert refused.status_code == 400
    assert refused.json()["message"] == "Not found or no asset.share access"
    assert not_owner.json()["message"] == "Not found or no album.share access"
    async with client_for(immich, key=None) as anyone:
        gone = await anyone.get("/shared-links/me", params={"key": expired.json()["key"]})
    assert gone.status_code == 401
    immich.permissions = ["asset.read", "asset.view"]
    async with client_for(immich) as api:
        forbidden = await api.post("/shared-links", json={"type": "INDIVIDUAL", "assetIds": [mine]})
    assert forbidden.status_code == 403
    assert forbidden.json()["message"] == "Missing required permission: sharedLink.create"


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 0, 3)], ids=lambda v: ".".join(map(str, v)))
async def test_video_playback_serves_the_mp4_with_its_length(version):
    spec = require_spec(SPEC_FOR[version])
    async with FakeImmich(version=version) as immich, client_for(immich) as api:
        clip = immich.add_asset(type="VIDEO", video_size=3 * 1024 * 1024)
        photo = immich.add_asset(preview_size=400_000)
        path = f"/api/assets/{clip}/video/playback"
        validate_request(spec, "GET", path, {}, None, None)
        played = await api.get(f"/assets/{clip}/video/playback")
        not_video = await api.get(f"/assets/{photo}/video/playback")
        preview = await api.get(f"/assets/{photo}/thumbnail", params={"size": "preview"})
    assert played.status_code == 200
    assert played.headers["content-type"] == "video/mp4"
    assert int(played.headers["content-length"]) == 3 * 1024 * 1024 == len(played.content)
    assert played.content[4:8] == b"ftyp"
    validate_response(spec, "GET", path, 200, played.content)
    assert not_video.status_code == 400 and "not a video" in not_video.text
    assert len(preview.content) == 400_000 and preview.content[:2] == b"\xff\xd8"
