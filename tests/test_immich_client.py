"""ImmichClient against respx: request shapes, parsing, errors, metrics, no leaked key.

The canned response builders here (``asset_json`` and friends) follow the 2.7.3 and 3.0.3
specs; tests/test_immich_contract.py checks them against both.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import respx

from sidecar.config.model import Secret
from sidecar.immich.client import ImmichClient
from sidecar.immich.endpoints.keys import REQUIRED_PERMISSIONS
from sidecar.immich.errors import (
    ImmichAuthError,
    ImmichBadRequestError,
    ImmichNotFoundError,
    ImmichPermissionError,
    ImmichResponseError,
)
from sidecar.immich.models import Person, PersonRef, ServerVersion
from sidecar.immich.transport import USER_AGENT
from sidecar.ops.metrics import Metrics
from tests.fakes.fake_immich import FakeImmich
from tests.openapi import multipart_parts

BASE = "http://127.0.0.1:2283"
API = BASE + "/api"
KEY = "k3y-SECRET-abcdef0123456789"

ASSET_ID = "0f1c2b3a-4d5e-4f60-8a7b-9c0d1e2f3a4b"
ASSET_ID_2 = "1a2b3c4d-5e6f-4a0b-9c1d-2e3f4a5b6c7d"
PERSON_ID = "2b3c4d5e-6f70-4b1c-8d2e-3f4a5b6c7d8e"
ALBUM_ID = "3c4d5e6f-7081-4c2d-ae3f-4a5b6c7d8e9f"
FACE_ID = "4d5e6f70-8192-4d3e-bf40-5b6c7d8e9fa0"
OWNER_ID = "5e6f7081-92a3-4e4f-8051-6c7d8e9fa0b1"
KEY_ID = "6f708192-a3b4-4f50-9162-7d8e9fa0b1c2"
NOW = "2025-06-01T12:00:00.000Z"


# -- canned responses (valid for the named spec version) ---------------------------------


def person_json(person_id: str = PERSON_ID, name: str = "Alice") -> dict[str, Any]:
    return {
        "id": person_id,
        "name": name,
        "birthDate": None,
        "isHidden": False,
        "thumbnailPath": f"/data/thumbs/{person_id}.jpeg",
        "updatedAt": NOW,
    }


def asset_json(
    version: str = "3.0.3",
    asset_id: str = ASSET_ID,
    people: tuple[tuple[str, str], ...] = ((PERSON_ID, "Alice"),),
) -> dict[str, Any]:
    legacy = version.startswith("2.")
    person_list = []
    for pid, name in people:
        entry = person_json(pid, name)
        if legacy:
            entry["faces"] = []
        person_list.append(entry)
    asset: dict[str, Any] = {
        "id": asset_id,
        "type": "IMAGE",
        "checksum": "c2hhMQ==",
        "createdAt": NOW,
        "updatedAt": NOW,
        "fileCreatedAt": "2025-05-31T08:30:00.000Z",
        "fileModifiedAt": "2025-05-31T08:30:00.000Z",
        "localDateTime": "2025-05-31T10:30:00.000Z",
        "duration": "0:00:00.00000" if legacy else None,
        "hasMetadata": True,
        "height": 3000,
        "width": 4000,
        "isArchived": False,
        "isEdited": False,
        "isFavorite": False,
        "isOffline": False,
        "isTrashed": False,
        "originalFileName": "IMG_0001.jpg",
        "originalPath": "/data/library/IMG_0001.jpg",
        "ownerId": OWNER_ID,
        "thumbhash": None,
        "visibility": "timeline",
        "people": person_list,
        "exifInfo": {"city": "Lyon", "country": "France", "description": "Picnic"},
    }
    if legacy:
        asset["deviceAssetId"] = "IMG_0001.jpg-123"
        asset["deviceId"] = "phone"
    return asset


def search_json(
    items: list[dict[str, Any]], next_page: str | None = None, next_cursor: str | None = None
) -> dict[str, Any]:
    assets: dict[str, Any] = {
        "count": len(items),
        "total": len(items),
        "facets": [],
        "items": items,
        "nextPage": next_page,
    }
    if next_cursor is not None:
        assets["nextCursor"] = next_cursor
    return {"albums": {"count": 0, "total": 0, "facets": [], "items": []}, "assets": assets}


def version_json(major: int, minor: int, patch: int) -> dict[str, Any]:
    return {"major": major, "minor": minor, "patch": patch, "prerelease": None}


def api_key_json(permissions: list[str]) -> dict[str, Any]:
    return {
        "id": KEY_ID,
        "name": "sidecar",
        "createdAt": NOW,
        "updatedAt": NOW,
        "permissions": permissions,
    }


def people_json(people: list[dict[str, Any]], has_next: bool = False) -> dict[str, Any]:
    return {"people": people, "total": len(people), "hidden": 0, "hasNextPage": has_next}


def face_json(person: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": FACE_ID,
        "boundingBoxX1": 10,
        "boundingBoxY1": 20,
        "boundingBoxX2": 110,
        "boundingBoxY2": 140,
        "imageWidth": 4000,
        "imageHeight": 3000,
        "person": person,
        "sourceType": "machine-learning",
    }


def error_json(status: int, message: str | list[str], error: str = "Error") -> dict[str, Any]:
    return {"message": message, "error": error, "statusCode": status, "correlationId": "corr-123"}


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
async def client(metrics: Metrics):
    async with ImmichClient(BASE, Secret(KEY), metrics, wait_initial=0, wait_max=0) as c:
        yield c


@pytest.fixture
def mock():
    with respx.mock(base_url=API, assert_all_called=False) as router:
        yield router


def requests_sample(metrics: Metrics, endpoint: str, status: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "immich_sidecar_immich_requests_total", {"endpoint": endpoint, "status": status}
        )
        or 0.0
    )


def failures_sample(metrics: Metrics, endpoint: str, reason: str) -> float:
    return (
        metrics.registry.get_sample_value(
            "immich_sidecar_immich_request_failures_total", {"endpoint": endpoint, "reason": reason}
        )
        or 0.0
    )


# -- construction -------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["immich:2283", "ftp://immich", "http://immich?x=1"])
def test_rejects_a_base_url_that_is_not_http(url: str, metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="Immich URL"):
        ImmichClient(url, Secret(KEY), metrics)


async def test_a_trailing_api_in_the_base_url_is_not_doubled(
    mock: respx.Router, metrics: Metrics
) -> None:
    route = mock.get("/server/version").respond(json=version_json(3, 0, 3))
    async with ImmichClient(BASE + "/api/", Secret(KEY), metrics) as c:
        await c.version()
    assert route.calls.last.request.url.path == "/api/server/version"


# -- server --------------------------------------------------------------------------------


async def test_version_parses_and_is_remembered(client: ImmichClient, mock: respx.Router) -> None:
    mock.get("/server/version").respond(json=version_json(3, 2, 1))
    assert client.server_version is None
    version = await client.version()
    assert version == ServerVersion(3, 2, 1)
    assert version.has_search_filter
    assert client.server_version == version


async def test_missing_permissions_names_what_the_key_lacks(
    client: ImmichClient, mock: respx.Router
) -> None:
    route = mock.get("/api-keys/me")
    route.respond(json=api_key_json(["asset.read", "person.read"]))
    missing = await client.missing_permissions(REQUIRED_PERMISSIONS)
    assert "asset.read" not in missing and "person.read" not in missing
    assert missing == [p for p in REQUIRED_PERMISSIONS if p not in ("asset.read", "person.read")]
    route.respond(json=api_key_json(["all"]))
    assert await client.missing_permissions(REQUIRED_PERMISSIONS) == []


# -- search --------------------------------------------------------------------------------


async def test_search_metadata_sends_the_flat_form_and_parses_assets(
    client: ImmichClient,
    mock: respx.Router,
    metrics: Metrics,
) -> None:
    route = mock.post("/search/metadata").respond(
        json=search_json([asset_json("2.7.3")], next_page="2")
    )
    page = await client.search_metadata(
        created_after=datetime(2025, 6, 1, 10, 0, tzinfo=UTC),
        person_ids=[PERSON_ID],
        asset_type="IMAGE",
        page="1",
        size=250,
    )
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "visibility": "timeline",
        "withPeople": True,
        "withExif": True,
        "size": 250,
        "createdAfter": "2025-06-01T10:00:00.000Z",
        "personIds": [PERSON_ID],
        "type": "IMAGE",
        "page": 1,
    }
    assert page.next_page == "2"
    (asset,) = page.assets
    assert asset.id == ASSET_ID and asset.type == "IMAGE" and asset.on_timeline
    assert asset.people == (PersonRef(PERSON_ID, "Alice"),)
    assert asset.city == "Lyon" and asset.description == "Picnic"
    assert requests_sample(metrics, "POST /api/search/metadata", "200") == 1


async def test_search_metadata_filter_sends_the_32_form(
    client: ImmichClient, mock: respx.Router
) -> None:
    route = mock.post("/search/metadata").respond(
        json=search_json([asset_json()], next_cursor="opaque-cursor")
    )
    query = {"personIds": {"any": [PERSON_ID]}, "visibility": {"eq": "timeline"}}
    page = await client.search_metadata_filter(filter=query, cursor="c1", size=100)
    body = json.loads(route.calls.last.request.content)
    assert body == {
        "filter": query,
        "cursor": "c1",
        "size": 100,
        "withPeople": True,
        "withExif": True,
    }
    assert page.next_page == "opaque-cursor"


async def test_iter_search_goes_on_from_the_oldest_moment_not_the_next_offset(
    client: ImmichClient,
    mock: respx.Router,
) -> None:
    def taken(asset_id: str, when: str) -> dict[str, Any]:
        return asset_json(asset_id=asset_id) | {"fileCreatedAt": when}

    newest = taken(ASSET_ID, "2025-05-31T09:00:00.000Z")
    oldest = taken(ASSET_ID_2, "2025-05-31T08:00:00.000Z")
    older = taken(PERSON_ID, "2025-05-30T08:00:00.000Z")
    route = mock.post("/search/metadata")
    route.side_effect = [
        httpx.Response(200, json=search_json([newest, oldest], next_page="2")),
        httpx.Response(200, json=search_json([oldest, older])),  # the oldest comes again
    ]
    pages = [p async for p in client.iter_search(size=2)]
    assert [a.id for p in pages for a in p.assets] == [ASSET_ID, ASSET_ID_2, PERSON_ID]
    sent = [json.loads(c.request.content) for c in route.calls]
    assert [(b.get("page"), b.get("takenBefore")) for b in sent] == [
        (None, None),
        (None, "2025-05-31T08:00:00.000Z"),
    ]


async def test_search_rejects_a_size_the_server_would_refuse(client: ImmichClient) -> None:
    with pytest.raises(ValueError, match="between 1 and 1000"):
        await client.search_metadata(size=5000)


# -- people --------------------------------------------------------------------------------


async def test_people_sends_paging_and_parses(client: ImmichClient, mock: respx.Router) -> None:
    route = mock.get("/people").respond(json=people_json([person_json()], has_next=True))
    people, has_next = await client.people(page=2, size=10)
    assert people == [Person(PERSON_ID, "Alice", False)] and has_next
    assert dict(route.calls.last.request.url.params) == {
        "withHidden": "false",
        "page": "2",
        "size": "10",
    }


async def test_all_people_walks_every_page(client: ImmichClient, mock: respx.Router) -> None:
    route = mock.get("/people")
    route.side_effect = [
        httpx.Response(200, json=people_json([person_json(PERSON_ID, "A")], has_next=True)),
        httpx.Response(200, json=people_json([person_json(FACE_ID, "B")], has_next=False)),
    ]
    assert [p.name for p in await client.all_people()] == ["A", "B"]
    assert [c.request.url.params["page"] for c in route.calls] == ["1", "2"]


async def test_search_person_reads_a_bare_array(client: ImmichClient, mock: respx.Router) -> None:
    route = mock.get("/search/person").respond(json=[person_json(name="Alice Smith")])
    assert [p.name for p in await client.search_person("alice")] == ["Alice Smith"]
    assert route.calls.last.request.url.params["name"] == "alice"


async def test_person_thumbnail_bytes_or_none(
    client: ImmichClient, mock: respx.Router, metrics: Metrics
) -> None:
    route = mock.get(f"/people/{PERSON_ID}/thumbnail")
    route.respond(content=b"\xff\xd8jpeg", headers={"content-type": "image/jpeg"})
    assert await client.person_thumbnail(PERSON_ID) == b"\xff\xd8jpeg"
    route.respond(404, json=error_json(404, "Not found"))
    assert await client.person_thumbnail(PERSON_ID) is None
    endpoint = "GET /api/people/{id}/thumbnail"
    assert requests_sample(metrics, endpoint, "404") == 1
    assert failures_sample(metrics, endpoint, "http_4xx") == 0  # an expected answer


async def test_person_statistics(client: ImmichClient, mock: respx.Router) -> None:
    mock.get(f"/people/{PERSON_ID}/statistics").respond(json={"assets": 42})
    assert await client.person_statistics(PERSON_ID) == 42


# -- assets --------------------------------------------------------------------------------


async def test_asset_thumbnail_returns_bytes_and_type(
    client: ImmichClient, mock: respx.Router, metrics: Metrics
) -> None:
    route = mock.get(f"/assets/{ASSET_ID}/thumbnail").respond(
        content=b"JPEGDATA", headers={"content-type": "image/jpeg"}
    )
    assert await client.asset_thumbnail(ASSET_ID) == (b"JPEGDATA", "image/jpeg")
    assert route.calls.last.request.url.params["size"] == "preview"
    # the endpoint label is the template, never the id
    assert requests_sample(metrics, "GET /api/assets/{id}/thumbnail", "200") == 1
    with pytest.raises(ValueError, match="thumbnail size"):
        await client.asset_thumbnail(ASSET_ID, size="huge")


async def test_path_ids_are_escaped_not_interpreted(
    client: ImmichClient, mock: respx.Router
) -> None:
    route = mock.get(url__regex=r".*").respond(content=b"x", headers={"content-type": "image/png"})
    await client.asset_thumbnail("../../server/ping")
    assert route.calls.last.request.url.raw_path.startswith(b"/api/assets/..%2F..%2Fserver")


@pytest.mark.parametrize(("major", "device_fields"), [(2, True), (3, False)])
async def test_upload_sends_the_fields_of_the_server_version(
    client: ImmichClient,
    mock: respx.Router,
    major: int,
    device_fields: bool,
) -> None:
    mock.get("/server/version").respond(json=version_json(major, 0, 0))
    route = mock.post("/assets")
    route.respond(201, json={"id": ASSET_ID, "status": "created"})
    when = datetime(2025, 5, 31, 8, 30, tzinfo=UTC)
    result = await client.upload_asset(
        "cat.jpg",
        b"\xff\xd8cat",
        file_created_at=when,
        file_modified_at=when,
        content_type="image/jpeg",
    )
    assert result.id == ASSET_ID and not result.duplicate
    parts = multipart_parts(route.calls.last.request)
    assert parts["assetData"] == b"\xff\xd8cat"
    assert parts["fileCreatedAt"] == b"2025-05-31T08:30:00.000Z"
    assert ("deviceAssetId" in parts and "deviceId" in parts) is device_fields
    route.respond(200, json={"id": ASSET_ID, "status": "duplicate"})
    again = await client.upload_asset(
        "cat.jpg", b"\xff\xd8cat", file_created_at=when, file_modified_at=when
    )
    assert again.duplicate
    assert mock.routes[0].call_count == 1  # the version is asked once


async def test_set_description(client: ImmichClient, mock: respx.Router) -> None:
    route = mock.put(f"/assets/{ASSET_ID}").respond(json=asset_json())
    await client.set_description(ASSET_ID, "from Discord")
    assert json.loads(route.calls.last.request.content) == {"description": "from Discord"}


async def test_add_to_album_returns_per_id_results(
    client: ImmichClient, mock: respx.Router
) -> None:
    answer = [
        {"id": ASSET_ID, "success": True},
        {"id": ASSET_ID_2, "success": False, "error": "duplicate"},
    ]
    route = mock.put(f"/albums/{ALBUM_ID}/assets").respond(json=answer)
    assert await client.add_to_album(ALBUM_ID, [ASSET_ID, ASSET_ID_2]) == answer
    assert json.loads(route.calls.last.request.content) == {"ids": [ASSET_ID, ASSET_ID_2]}


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, ImmichBadRequestError),
        (401, ImmichAuthError),
        (403, ImmichPermissionError),
        (404, ImmichNotFoundError),
    ],
)
async def test_http_errors_carry_immich_message_and_correlation_id(
    client: ImmichClient,
    mock: respx.Router,
    metrics: Metrics,
    status: int,
    cls: type[Exception],
) -> None:
    route = mock.get("/people").respond(
        status,
        json=error_json(status, ["Missing required permission: person.read"]),
        headers={"x-correlation-id": "abc-123"},
    )
    with pytest.raises(cls) as caught:
        await client.people()
    text = str(caught.value)
    assert "Missing required permission: person.read" in text
    assert "abc-123" in text and f"HTTP {status}" in text and "GET /api/people" in text
    assert route.call_count == 1
    assert failures_sample(metrics, "GET /api/people", "http_4xx") == 1


async def test_the_32_filter_is_never_sent_to_an_older_server() -> None:
    """An older Immich ignores ``filter`` and answers its whole library, unfiltered."""
    async with (
        FakeImmich(version=(3, 1, 0)) as immich,
        ImmichClient(immich.url, Secret(immich.api_key), Metrics(), max_attempts=1) as client,
    ):
        immich.add_asset(type="VIDEO")
        await client.version()
        with pytest.raises(ValueError, match=r"3\.2 added"):
            await client.search_metadata_filter(filter={"type": {"eq": "IMAGE"}})
        assert immich.api_requests("POST", "/api/search/metadata") == []


async def test_a_3x_validation_error_names_each_problem_not_just_validation_failed() -> None:
    """3.x answers {"message": "Validation failed", "errors": [...]}: the problems are what a
    user needs to read."""
    async with (
        FakeImmich(version=(3, 1, 0)) as immich,
        ImmichClient(immich.url, Secret(immich.api_key), Metrics(), max_attempts=1) as client,
    ):
        with pytest.raises(ImmichBadRequestError) as caught:
            await client.search_metadata(person_ids=["Alice"])
    assert "Validation failed: personIds: must be a UUID" in str(caught.value)
    assert "X-Correlation-ID" not in str(caught.value) and "correlation id" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "content_type", "expected"),
    [
        (b"<html><body>Sign in</body></html>", "text/html", "expected JSON but got text/html"),
        (b'{"assets": {"items": [', "application/json", "invalid JSON"),
        (b'{"assets": {"items": "nope", "nextPage": null}}', "application/json", "not a list"),
        (
            b'{"assets": {"items": [{"type": "IMAGE"}], "nextPage": null}}',
            "application/json",
            "missing field 'id'",
        ),
        (b'{"assets": {"items": [], "nextPage": 7}}', "application/json", "not a string"),
        (b"[1, 2]", "application/json", "not an object"),
    ],
)
async def test_bad_bodies_raise_a_short_response_error(
    client: ImmichClient,
    mock: respx.Router,
    metrics: Metrics,
    content: bytes,
    content_type: str,
    expected: str,
) -> None:
    mock.post("/search/metadata").respond(content=content, headers={"content-type": content_type})
    with pytest.raises(ImmichResponseError) as caught:
        await client.search_metadata()
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert failures_sample(metrics, "POST /api/search/metadata", "bad_response") == 1


async def test_a_redirect_to_a_login_page_is_a_response_error(
    client: ImmichClient, mock: respx.Router
) -> None:
    mock.get("/people").respond(302, headers={"location": "https://sso.example/login?x=1"})
    with pytest.raises(ImmichResponseError, match="redirect") as caught:
        await client.people()
    assert "sso.example" not in str(caught.value)


async def test_a_huge_error_body_is_read_only_in_part(
    client: ImmichClient, mock: respx.Router
) -> None:
    message = "x" * (1024 * 1024)
    mock.get("/people").respond(400, json={"message": message})
    with pytest.raises(ImmichBadRequestError) as caught:
        await client.people()
    assert len(str(caught.value)) < 300  # truncated JSON: no message parsed, nothing huge quoted


# -- secrets -------------------------------------------------------------------------------


async def test_the_key_goes_in_a_header_and_nowhere_else(
    client: ImmichClient,
    mock: respx.Router,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mock.get("/search/person").respond(json=[person_json()])
    mock.get("/people").respond(401, json=error_json(401, f"Invalid API key {KEY}"))
    await client.search_person("alice")
    with pytest.raises(ImmichAuthError) as caught:
        await client.people()
    for call in mock.calls:
        assert call.request.headers["x-api-key"] == KEY
        assert call.request.headers["user-agent"] == USER_AGENT
        assert KEY not in str(call.request.url)
    assert KEY not in str(caught.value)  # even when Immich echoes it back
    assert KEY not in caplog.text
    assert "GET /api/search/person -> 200" in caplog.text  # the DEBUG line per request


async def test_unauthenticated_calls_send_no_key(client: ImmichClient, mock: respx.Router) -> None:
    route = mock.get("/server/version").respond(json=version_json(3, 2, 1))
    await client.version()
    assert "x-api-key" not in route.calls.last.request.headers


# -- paging against the fake Immich: nothing skipped, nothing twice ------------------------


@pytest.mark.parametrize("size", [1000, 50])
@pytest.mark.parametrize("version", [(2, 7, 5), (3, 1, 0)], ids=["2.7.5", "3.1.0"])
async def test_iter_search_hands_on_every_asset_once_though_ties_change_order(
    version: tuple[int, int, int],
    size: int,
) -> None:
    """Before 3.x, Immich returns assets taken at the same moment in a different order on each
    request (the fake always does): offset paging would skip some of them."""
    start = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    async with FakeImmich(version=version) as immich:
        added: list[str] = []
        for hours, count, taken in (
            (1, 30, start + timedelta(days=1)),
            (2, 1_100, start),
            (3, 70, start - timedelta(days=1)),
            (4, 200, None),
        ):  # taken when uploaded: no ties
            added += immich.add_assets_bulk(
                count,
                created_at=start + timedelta(hours=hours),
                taken_at=taken,
                upload_gap=timedelta(microseconds=300),
            )
        immich.add_asset(created_at=start - timedelta(seconds=1))  # outside the window
        async with ImmichClient(
            immich.url, Secret(immich.api_key), Metrics(), max_attempts=1
        ) as client:
            pages = [p async for p in client.iter_search(created_after=start, size=size)]
        handed = [a.id for page in pages for a in page.assets]
        searches = immich.api_requests("POST", "/api/search/metadata")
    assert len(handed) == len(set(handed)) == len(added)
    assert set(handed) == set(added)
    assert all("page" not in (r.json or {}) for r in searches)
    print(f"{version} size {size}: {len(added)} assets in {len(searches)} requests")


async def test_iter_search_falls_back_to_offsets_only_for_uploads_it_cannot_tell_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Over a page of assets uploaded and changed within 3 ms and taken at one moment: no time
    bound splits them, so offsets it is; exact from 3.1, which breaks ties by id, so no warning
    there (tests/test_library_imports.py has 2.x's)."""
    start = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    async with FakeImmich(version=(3, 1, 0)) as immich:
        added = immich.add_assets_bulk(
            120, created_at=start, taken_at=start, upload_gap=timedelta(microseconds=10)
        )
        added += immich.add_assets_bulk(30, created_at=start + timedelta(seconds=1))
        async with ImmichClient(
            immich.url, Secret(immich.api_key), Metrics(), max_attempts=1
        ) as client:
            await client.version()
            handed = [a.id async for p in client.iter_search(size=50) for a in p.assets]
        offsets = [
            r.json.get("page")
            for r in immich.api_requests("POST", "/api/search/metadata")
            if r.json and r.json.get("page")
        ]
    assert sorted(handed) == sorted(added)
    assert offsets == [2, 3]
    assert "twice and others never" not in caplog.text


# -- intent-level searches: the client picks the form the server's version understands ----


@pytest.mark.parametrize(
    ("version", "searches", "form"),
    [
        ((2, 7, 5), 2, "personIds"),  # before 3.2 personIds means ALL: one search per person
        ((3, 2, 0), 1, "filter"),  # 3.2+: one search with personIds.any
    ],
)
async def test_assets_of_people_learns_the_version_once_and_picks_the_form(
    version: tuple[int, int, int],
    searches: int,
    form: str,
) -> None:
    since = datetime.now(UTC) - timedelta(hours=1)
    async with FakeImmich(version=version) as immich:
        alice, bob, carol = (immich.add_person(n) for n in ("Alice", "Bob", "Carol"))
        both = immich.add_asset(created_at=since + timedelta(minutes=5), people=[alice, bob])
        only_bob = immich.add_asset(created_at=since + timedelta(minutes=6), people=[bob])
        immich.add_asset(created_at=since + timedelta(minutes=7), people=[carol])
        immich.add_asset(created_at=since - timedelta(minutes=1), people=[alice])  # too old
        async with ImmichClient(
            immich.url, Secret(immich.api_key), Metrics(), max_attempts=1
        ) as client:
            first = [
                a.id async for page in client.assets_of_people([alice, bob], since) for a in page
            ]
            again = [
                a.id async for page in client.assets_of_people([bob, alice], since) for a in page
            ]
        bodies = [r.json or {} for r in immich.api_requests("POST", "/api/search/metadata")]
        versions = immich.api_requests("GET", "/api/server/version")
    assert sorted(first) == sorted(again) == sorted([both, only_bob])  # each asset once
    assert len(versions) == 1
    assert len(bodies) == 2 * searches and all(form in body for body in bodies)


async def test_new_assets_is_a_window_of_one_type() -> None:
    start = datetime.now(UTC) - timedelta(hours=1)
    async with FakeImmich(version=(3, 2, 0)) as immich:
        video = immich.add_asset(created_at=start + timedelta(minutes=1), type="VIDEO")
        immich.add_asset(created_at=start + timedelta(minutes=2))
        immich.add_asset(created_at=start + timedelta(hours=2), type="VIDEO")  # after
        async with ImmichClient(
            immich.url, Secret(immich.api_key), Metrics(), max_attempts=1
        ) as client:
            found = [
                a.id
                async for page in client.new_assets(start, start + timedelta(minutes=30), "VIDEO")
                for a in page
            ]
    assert found == [video]
