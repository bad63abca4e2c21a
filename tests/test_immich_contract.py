"""Every request ImmichClient makes, and every canned answer the tests use, against the
published Immich 2.7.3 and 3.0.3 OpenAPI specs (read from ../shared/immich; skipped where
absent). The 3.2 ``filter`` search form is in neither spec: it is checked against a small
schema written here from DESIGN.md (the published @immich/sdk 3.2.2 types)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import jsonschema
import pytest
import respx

from sidecar.config.model import Secret
from sidecar.immich.client import ImmichClient
from sidecar.immich.endpoints.keys import REQUIRED_PERMISSIONS
from sidecar.immich.models import UploadResult
from sidecar.ops.metrics import Metrics
from tests.fakes.fake_immich import FakeImmich
from tests.openapi import (
    SPEC_VERSIONS,
    ContractError,
    Spec,
    require_spec,
    validate_httpx_request,
    validate_request,
    validate_response,
)
from tests.test_immich_client import (
    ALBUM_ID,
    API,
    ASSET_ID,
    ASSET_ID_2,
    BASE,
    KEY,
    PERSON_ID,
    api_key_json,
    asset_json,
    face_json,
    people_json,
    person_json,
    search_json,
)

WHEN = datetime(2025, 5, 31, 8, 30, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0fake-jpeg"
MP4 = b"\x00\x00\x00\x18ftypmp42fake-video"

Call = Callable[[ImmichClient], Awaitable[object]]


def canned(version: str) -> dict[tuple[str, str], tuple[int, object]]:
    """(method, spec path) -> (status, body) as an Immich of ``version`` answers."""
    major, minor, patch = (int(p) for p in version.split("."))
    server_version: dict[str, Any] = {"major": major, "minor": minor, "patch": patch}
    if major >= 3:
        server_version["prerelease"] = None
    return {
        ("GET", "/server/ping"): (200, {"res": "pong"}),
        ("GET", "/server/version"): (200, server_version),
        ("GET", "/api-keys/me"): (200, api_key_json(["asset.read", "person.read"])),
        ("GET", "/users/me"): (200, FakeImmich().me_json()),
        ("POST", "/search/metadata"): (
            200,
            search_json(
                [asset_json(version), asset_json(version, ASSET_ID_2, people=())], next_page=None
            ),
        ),
        ("GET", "/people"): (200, people_json([born_person_json()], has_next=False)),
        ("GET", "/memories"): (200, memories_json(version)),
        ("POST", "/search/random"): (200, [asset_json(version), asset_json(version, ASSET_ID_2)]),
        ("POST", "/search/statistics"): (200, {"total": 2}),
        ("GET", "/search/person"): (200, [person_json()]),
        ("GET", "/people/{id}/thumbnail"): (200, JPEG),
        ("GET", "/people/{id}/statistics"): (200, {"assets": 12}),
        ("GET", "/assets/{id}/thumbnail"): (200, JPEG),
        ("GET", "/faces"): (200, [face_json(person_json()), face_json(None)]),
        ("POST", "/assets"): (201, {"id": ASSET_ID, "status": "created"}),
        ("PUT", "/assets/{id}"): (200, asset_json(version)),
        ("PUT", "/assets"): (204, None),
        ("GET", "/people/{id}"): (200, person_json()),
        ("GET", "/albums"): (200, [album_json(version)]),
        ("POST", "/shared-links"): (201, shared_link_json(version)),
        ("GET", "/assets/{id}/video/playback"): (200, MP4),
        ("PUT", "/albums/{id}/assets"): (
            200,
            [
                {"id": ASSET_ID, "success": True},
                {"id": ASSET_ID_2, "success": False, "error": "duplicate"},
            ],
        ),
    }


CALLS: dict[str, Call] = {
    "version": lambda c: c.version(),
    "missing_permissions": lambda c: c.missing_permissions(REQUIRED_PERMISSIONS),
    "me": lambda c: c.me(),
    "search_metadata": lambda c: c.search_metadata(
        created_after=WHEN,
        created_before=datetime(2025, 6, 1, tzinfo=UTC),
        person_ids=[PERSON_ID],
        asset_type="VIDEO",
        page="2",
        size=1000,
        with_people=True,
        with_exif=False,
    ),
    "search_metadata_minimal": lambda c: c.search_metadata(),
    "count_assets": lambda c: c.count_assets(WHEN, WHEN + timedelta(minutes=1), "VIDEO"),
    "new_assets_changed_unread": lambda c: _drain(
        c.new_assets(
            WHEN,
            WHEN + timedelta(minutes=1),
            changed=(WHEN, WHEN + timedelta(minutes=3)),
            readable_only=False,
        )
    ),
    "iter_search": lambda c: _drain(c.iter_search(created_after=WHEN, size=500)),
    "people": lambda c: c.people(page=3, size=100),
    "all_people": lambda c: c.all_people(),
    "search_person": lambda c: c.search_person("ali"),
    "person_thumbnail": lambda c: c.person_thumbnail(PERSON_ID),
    "person_statistics": lambda c: c.person_statistics(PERSON_ID),
    "asset_thumbnail_preview": lambda c: c.asset_thumbnail(ASSET_ID),
    "asset_thumbnail_small": lambda c: c.asset_thumbnail(ASSET_ID, size="thumbnail"),
    "asset_thumbnail_fullsize": lambda c: c.asset_thumbnail(ASSET_ID, size="fullsize"),
    "upload_asset": lambda c: c.upload_asset(
        "IMG_0002.jpg", JPEG, file_created_at=WHEN, file_modified_at=WHEN, content_type="image/jpeg"
    ),
    "set_description": lambda c: c.set_description(ASSET_ID, "Posted from Discord"),
    "set_favourite": lambda c: c.set_favourite([ASSET_ID]),
    "person": lambda c: c.person(PERSON_ID),
    "search_person_with_hidden": lambda c: c.search_person("ali", with_hidden=True),
    "add_to_album": lambda c: c.add_to_album(ALBUM_ID, [ASSET_ID, ASSET_ID_2]),
    "list_albums": lambda c: c.list_albums(),
    "memories_on": lambda c: c.memories_on(date(2026, 12, 1)),
    "create_shared_link": lambda c: c.create_shared_link(
        asset_ids=[ASSET_ID, ASSET_ID_2],
        expires_at=WHEN + timedelta(days=30),
        allow_download=False,
        show_metadata=False,
        description="immich-discord-sidecar: family (kids)",
    ),
    "create_album_shared_link": lambda c: c.create_shared_link(
        album_id=ALBUM_ID,
        expires_at=WHEN + timedelta(days=7),
        allow_download=True,
        show_metadata=True,
        description="immich-discord-sidecar: family (holiday)",
    ),
    "video_playback": lambda c: c.video_playback(ASSET_ID, 8 * 1024 * 1024),
    "random_assets": lambda c: c.random_assets(
        person_ids=[PERSON_ID], size=50, taken_after=WHEN, taken_before=WHEN + timedelta(days=1)
    ),
}


def shared_link_json(version: str) -> dict[str, Any]:
    """A shared link exactly as the fake Immich of that version answers its creation."""
    fake = FakeImmich(version=tuple(int(p) for p in version.split(".")))  # type: ignore[arg-type]
    asset = fake.add_asset()
    return fake.shared_links.link_json(fake.shared_links.add([asset]))


def born_person_json() -> dict[str, Any]:
    person = person_json()
    person["birthDate"] = "2019-12-01"
    return person


def memories_json(version: str) -> list[dict[str, Any]]:
    """ "On this day" memories exactly as the fake Immich of that version answers them."""
    fake = FakeImmich(version=tuple(int(p) for p in version.split(".")))  # type: ignore[arg-type]
    alice = fake.add_person("Alice")
    fake.add_asset(taken_at=datetime(2023, 12, 1, 10, tzinfo=UTC), people=[alice])
    fake.run_memory_job(date(2026, 12, 1))
    return fake.memories_json()


def album_json(version: str) -> dict[str, Any]:
    """An album exactly as the fake Immich of that version lists it."""
    fake = FakeImmich(version=tuple(int(p) for p in version.split(".")))  # type: ignore[arg-type]
    return fake.album_json(fake.add_album("From Discord"))


async def _drain(pages: Any) -> list[object]:
    return [page async for page in pages]


@pytest.fixture(params=SPEC_VERSIONS)
def spec(request: pytest.FixtureRequest) -> Spec:
    return require_spec(request.param)


@pytest.fixture
def immich(spec: Spec) -> Iterator[respx.Router]:
    """A respx Immich of the spec's version that answers every route from ``canned``."""
    with respx_immich(spec, canned(spec.version)) as router:
        yield router


@contextmanager
def respx_immich(
    spec: Spec, answers: dict[tuple[str, str], tuple[int, object]]
) -> Iterator[respx.Router]:
    """A respx Immich of the spec's version answering each (method, spec path) from ``answers``."""

    def handler(request: httpx.Request) -> httpx.Response:
        template, _, _ = spec.find(request.method, request.url.path)
        status, body = answers[(request.method, template)]
        if isinstance(body, bytes):
            kind = "video/mp4" if body.startswith(MP4[:8]) else "image/jpeg"
            return httpx.Response(status, content=body, headers={"content-type": kind})
        if body is None:  # 204 No Content
            return httpx.Response(status)
        return httpx.Response(status, json=body)

    with respx.mock(base_url=API) as router:
        router.route().mock(side_effect=handler)
        yield router


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_requests_and_canned_answers_match_the_spec(
    spec: Spec,
    immich: respx.Router,
    name: str,
) -> None:
    async with ImmichClient(BASE, Secret(KEY), Metrics()) as client:
        await CALLS[name](client)
    assert immich.calls, "the call made no request"
    for request, response in immich.calls:
        validate_httpx_request(spec, request)
        body: object = response.content
        if "json" in response.headers.get("content-type", ""):
            body = json.loads(response.content)
        validate_response(spec, request.method, request.url.path, response.status_code, body)


async def test_a_duplicate_upload_is_reported_with_the_existing_id(spec: Spec) -> None:
    """Immich answers a file it already has (same checksum) with 200 and status "duplicate":
    the client's upload and that answer both match the spec, and the client says so."""
    answers = canned(spec.version)
    answers[("POST", "/assets")] = (200, {"id": ASSET_ID_2, "status": "duplicate"})
    with respx_immich(spec, answers) as router:
        async with ImmichClient(BASE, Secret(KEY), Metrics()) as client:
            result = await CALLS["upload_asset"](client)
        upload = router.calls.last
    assert result == UploadResult(id=ASSET_ID_2, duplicate=True)
    assert upload.request.url.path == "/api/assets"
    validate_httpx_request(spec, upload.request)
    validate_response(
        spec,
        "POST",
        "/api/assets",
        upload.response.status_code,
        json.loads(upload.response.content),
    )


def test_the_validator_catches_what_the_client_must_not_send(spec: Spec) -> None:
    """The checks above can fail: the spec rejects what a broken client would send."""
    with pytest.raises(ContractError, match="x-api-key"):
        validate_request(spec, "GET", "/api/people", {"x-api-key": KEY}, None, None)
    with pytest.raises(ContractError, match="size"):
        validate_request(spec, "POST", "/api/search/metadata", {}, {"size": 5000}, None)
    with pytest.raises(ContractError, match="uuid"):
        validate_request(spec, "GET", "/api/assets/not-an-id/thumbnail", {}, None, None)
    with pytest.raises(ContractError, match="fileCreatedAt"):
        validate_request(spec, "POST", "/api/assets", {}, None, {"assetData", "fileModifiedAt"})
    with pytest.raises(ContractError, match="items"):
        validate_response(spec, "POST", "/api/search/metadata", 200, {"assets": {}, "albums": {}})


def test_the_needed_permissions_exist_in_the_spec(spec: Spec) -> None:
    known = set(spec.document["components"]["schemas"]["Permission"]["enum"])
    assert set(REQUIRED_PERMISSIONS) <= known


# -- the 3.2 filter form (in neither spec) -------------------------------------------------

_UUID = {"type": "string", "format": "uuid"}
_IDS = {"type": "array", "items": _UUID}
_TIME = {"type": "string", "format": "date-time"}
SEARCH_FILTER_SCHEMA: dict[str, Any] = {
    "$defs": {
        "filter": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "personIds": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"any": _IDS, "all": _IDS, "none": _IDS},
                },
                "createdAt": {
                    "type": "object",
                    "additionalProperties": False,
                    "minProperties": 1,
                    "properties": {"gte": _TIME, "gt": _TIME, "lte": _TIME, "lt": _TIME},
                },
                "visibility": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "eq": {"enum": ["archive", "timeline", "hidden", "locked"]},
                        "in": {
                            "type": "array",
                            "items": {"enum": ["archive", "timeline", "hidden", "locked"]},
                        },
                    },
                },
                "type": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"eq": {"enum": ["IMAGE", "VIDEO", "AUDIO", "OTHER"]}},
                },
                "hasPeople": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"eq": {"type": "boolean"}},
                },
                "or": {"type": "array", "items": {"$ref": "#/$defs/filter"}},
            },
        },
    },
    "type": "object",
    "additionalProperties": False,
    "required": ["filter"],
    "properties": {
        "filter": {"$ref": "#/$defs/filter"},
        "cursor": {"type": "string"},
        "size": {"type": "integer", "minimum": 1, "maximum": 1000},
        "withPeople": {"type": "boolean"},
        "withExif": {"type": "boolean"},
    },
}


def _check_filter_body(body: object) -> None:
    jsonschema.Draft202012Validator(
        SEARCH_FILTER_SCHEMA, format_checker=jsonschema.FormatChecker()
    ).validate(body)


async def test_the_32_filter_request_matches_the_sdk_shape() -> None:
    query = {
        "personIds": {"any": [PERSON_ID]},
        "createdAt": {"gte": "2025-05-31T08:30:00.000Z"},
        "visibility": {"eq": "timeline"},
        "or": [{"type": {"eq": "VIDEO"}}, {"hasPeople": {"eq": True}}],
    }
    with respx.mock(base_url=API) as router:
        route = router.post("/search/metadata").respond(
            json=search_json([asset_json("3.0.3")], next_cursor="next")
        )
        async with ImmichClient(BASE, Secret(KEY), Metrics()) as client:
            page = await client.search_metadata_filter(filter=query, cursor="abc", size=200)
    assert page.next_page == "next"
    _check_filter_body(json.loads(route.calls.last.request.content))


def test_the_filter_schema_is_not_a_rubber_stamp() -> None:
    with pytest.raises(jsonschema.ValidationError):
        _check_filter_body({"filter": {"personIds": [PERSON_ID]}})  # flat list: the old form
    with pytest.raises(jsonschema.ValidationError):
        _check_filter_body({"filter": {}, "size": 5000})


def test_neither_spec_knows_the_filter_form(spec: Spec) -> None:
    with pytest.raises(ContractError, match="filter"):
        validate_request(
            spec,
            "POST",
            "/api/search/metadata",
            {},
            {"filter": {"personIds": {"any": [PERSON_ID]}}},
            None,
        )
