"""A stateful fake Immich server: real HTTP on 127.0.0.1, shaped like Immich 2.x or 3.x.

Tests drive it directly (``add_person``, ``add_asset``, ``recognise`` ...); a fake in another
process is driven through the unauthenticated control API under ``/_fake/``. Every API call
is recorded (``requests``) so tests can count what a poll costs, and ``faults`` injects
failures for the fault suite.

Where Immich leaves room, or where 2.7.5 and 3.1.0 (both checked against real servers) differ:

- ``search/metadata`` orders by ``fileCreatedAt`` (when the photo was taken), newest first;
  ``order: "asc"`` reverses it. 3.x breaks ties by id; 2.x leaves them to Postgres' plan, and
  the fake's 2.x shape returns them in a new order on each request (offset paging over ties
  then repeats some assets and skips others, as a real 2.7.5 did).
- Without a ``visibility`` the search returns timeline assets on 2.x, timeline and archived
  ones on 3.x; hidden and locked assets only appear when asked for by name. Trashed assets
  need ``withDeleted``.
- ``total`` and ``count`` are both the number of items on the page, as Immich answers.
- Fields Immich does not know are stripped and ignored (200), as its validation does: a 3.2
  ``filter`` sent to an older server comes back unfiltered. Search fields the fake does not
  implement answer 400 instead of being silently ignored.
- 3.x validates strictly: a page number sent as a string, or a date without a time zone, is a
  400. Its errors are ``{"message": ...}``, and validation errors ``{"message": "Validation
  failed", "errors": [{path, message, ...}]}``; 2.x adds ``error``, ``statusCode`` and
  ``correlationId`` and lists validation problems in ``message``.
- Unknown ids answer 400 ``Not found or no <permission> access`` (Immich's access check), an
  asset thumbnail too; a person thumbnail answers 404 on 3.x (also for an unknown id).
- ``search/person`` is fuzzy (pg_trgm word similarity >= 0.5 on unaccented names, at most 100
  answers, best first); hidden people only with ``withHidden``; an empty name is 400 on 2.x.
- Video ``duration`` is ``"00:00:12.000"`` on 2.x, milliseconds on 3.x (null for images).
- Bulk uploads never share a ``createdAt``: Immich keeps microseconds and shows milliseconds.
- An external library's scan (``library_scan``) inserts its batch in one statement: every
  asset shares one ``createdAt`` (and ``updatedAt``), its ``fileCreatedAt`` is the file's
  mtime, and it has no exif row until metadata extraction reads it, ``extract_after`` later
  (``pause_extraction``/``resume_extraction`` hold the queue, as a paused job queue or a
  backlog does). Until then the flat ``search/metadata`` and ``search/random`` with
  ``withExif``, and ``GET /timeline/bucket``, leave the asset out (they inner-join the exif
  table); ``withExif: false``, the 3.2 ``filter`` form (a left join), ``search/statistics``,
  ``GET /timeline/buckets`` (counts) and ``GET /assets/{id}`` show it without ``exifInfo``.
  Extraction updates each asset on its own: ``updatedAt`` moves to that moment (one asset
  per ``extract_step``) and ``fileCreatedAt`` to the date in the file (``exif_taken_at``).
- ``on_this_day`` memories exist only once the nightly ``memory-create`` job ran
  (``run_memory_job`` or ``POST /api/jobs``): one per past year, for today ±3 days, each day
  covered once (photos added later are in no memory). ``GET /memories?for=`` takes a date on
  3.x (a date-time is a 400) and a date or date-time on 2.x. ``search/random`` answers a bare
  array; people carry ``birthDate`` (``YYYY-MM-DD`` or null).

Workflows (``tests.fakes.fake_workflows``): 3.x workflows call their webhook steps for the
owner's uploads (``AssetCreate``, then ``AssetMetadataExtraction`` ~20 ms later), without retry;
2.x has workflows but no webhook action.

Run it on its own: ``python -m tests.fakes.fake_immich --port 0 --version 2.7.5`` prints its
URL on the first line of stdout and serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import contextvars
import functools
import hashlib
import hmac
import json
import random
import re
import signal
import sys
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes import images
from tests.fakes.fake_shared_links import PERMISSIONS as SHARED_LINK_PERMISSIONS
from tests.fakes.fake_shared_links import FakeSharedLinks
from tests.fakes.fake_workflows import PERMISSIONS as WORKFLOW_PERMISSIONS
from tests.fakes.fake_workflows import FakeWorkflows

Json = Any
# The user whose API key made the request being answered ("" is the first key's user).
_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("fake_immich_caller", default="")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FAULT_KINDS = ("500", "503", "429", "timeout", "drop")
HOSTILE_KINDS = (
    "truncated_json",
    "wrong_types",
    "missing_fields",
    "huge_error_body",
    "html_login_page",
)
HUGE_ERROR_BYTES = 10 * 1024 * 1024
MISSING_FIELDS = frozenset({"id", "items", "major", "people", "permissions", "res"})
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    "<form method=post action=/oauth2/sign_in><input name=username><input name=password "
    "type=password><button>Sign in</button></form></body></html>"
)
VISIBILITIES = ("archive", "timeline", "hidden", "locked")
ASSET_TYPES = ("IMAGE", "VIDEO", "AUDIO", "OTHER")
DEFAULT_SEARCH_VISIBILITY = ("timeline", "archive")  # 3.x; 2.x: timeline only
_DATE_FIELDS = frozenset(
    {
        "createdAfter", "createdBefore", "updatedAfter", "updatedBefore", "takenAfter",
        "takenBefore", "trashedAfter", "trashedBefore",
    }
)  # fmt: skip
_ZONED = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
UUID_V4 = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
)
VIDEO_EXTENSIONS = frozenset({"mp4", "mov", "m4v", "webm", "mkv", "avi", "3gp", "mts"})
IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "png", "webp", "heic", "heif", "gif", "tif", "tiff", "dng", "avif", "bmp"}
)
THUMBNAIL_SIZES = {  # size -> (encoder, content type, width, height)
    "thumbnail": (images.webp, "image/webp", 16, 16),
    "preview": (images.jpeg, "image/jpeg", 32, 24),
    "fullsize": (images.jpeg, "image/jpeg", 64, 48),
    "original": (images.jpeg, "image/jpeg", 64, 48),
}
_SEARCH_FIELDS_COMMON = frozenset(
    {
        "albumIds", "checksum", "city", "country", "createdAfter", "createdBefore",
        "description", "id", "isFavorite", "order", "originalFileName", "page", "personIds",
        "size", "takenAfter", "takenBefore", "type", "updatedAfter", "updatedBefore",
        "visibility", "withDeleted", "withExif", "withPeople", "withStacked",
    }
)  # fmt: skip
# Valid Immich search fields the fake does not implement: answered with a clear 400.
_SEARCH_FIELDS_UNIMPLEMENTED = frozenset(
    {
        "encodedVideoPath", "isEncoded", "isMotion", "isNotInAlbum", "isOffline",
        "lensModel", "libraryId", "make", "model", "ocr", "originalPath", "previewPath",
        "rating", "state", "tagIds", "thumbnailPath", "trashedAfter", "trashedBefore",
    }
)  # fmt: skip
_UPDATE_ASSET_FIELDS = frozenset(
    {
        "dateTimeOriginal", "description", "isFavorite", "latitude", "livePhotoVideoId",
        "longitude", "rating", "visibility",
    }
)  # fmt: skip
_FILTER_OPERATORS = {
    "personIds": frozenset({"any", "all", "none"}),
    "createdAt": frozenset({"gte", "gt", "lte", "lt"}),
    "visibility": frozenset({"eq", "in"}),
    "type": frozenset({"eq"}),
    "hasPeople": frozenset({"eq"}),
}
# (method, route) -> the permission Immich requires ("x-immich-permission" in the specs);
# None: any valid key will do. Routes not listed here need no key at all.
_PERMISSIONS: dict[tuple[str, str], str | None] = {
    ("GET", "/api/api-keys/me"): None,
    ("GET", "/api/users/me"): "user.read",
    ("POST", "/api/search/metadata"): "asset.read",
    ("GET", "/api/people"): "person.read",
    ("GET", "/api/search/person"): "person.read",
    ("GET", "/api/people/{id}"): "person.read",
    ("PUT", "/api/people/{id}"): "person.update",
    ("GET", "/api/people/{id}/thumbnail"): "person.read",
    ("GET", "/api/people/{id}/statistics"): "person.statistics",
    ("GET", "/api/assets/{id}/thumbnail"): "asset.view",
    ("GET", "/api/assets/{id}"): "asset.read",
    ("GET", "/api/faces"): "face.read",
    ("POST", "/api/assets"): "asset.upload",
    ("PUT", "/api/assets/{id}"): "asset.update",
    ("PUT", "/api/assets"): "asset.update",
    ("PUT", "/api/albums/{id}/assets"): "albumAsset.create",
    ("GET", "/api/albums/{id}"): "album.read",
    ("GET", "/api/albums"): "album.read",
    ("GET", "/api/timeline/buckets"): "asset.read",
    ("GET", "/api/timeline/bucket"): "asset.read",
    ("GET", "/api/memories"): "memory.read",
    ("POST", "/api/search/random"): "asset.read",
    ("POST", "/api/search/statistics"): "asset.statistics",
    ("POST", "/api/jobs"): "job.create",
    **WORKFLOW_PERMISSIONS,
    **SHARED_LINK_PERMISSIONS,
}
MEMORY_DAYS_AROUND = 3  # the nightly memory job covers today and 3 days either side
_PLAIN_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One API request as the fake saw it; ``status`` is 0 when no answer was sent."""

    method: str
    path: str
    query: Mapping[str, str]
    json: Json | None
    status: int
    response_bytes: int


@dataclass(frozen=True)
class Faults:
    """Inject a failure into a share (``rate``) of the API requests under ``paths``.

    The kind of each fault is drawn from ``kinds`` by a generator seeded with ``seed``, so a
    given sequence of requests always meets the same faults. ``timeout`` holds the request
    for ``timeout_delay`` seconds and then drops the connection; ``drop`` drops it at once;
    ``429`` sends ``Retry-After: retry_after``; ``503`` answers like a reverse proxy (HTML).
    """

    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    paths: str = "/api/"
    timeout_delay: float = 30.0
    retry_after: int = 1

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"fault rate must be between 0 and 1, not {self.rate}")
        unknown = set(self.kinds) - set(FAULT_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be among {FAULT_KINDS}, not {self.kinds}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Json]) -> Faults:
        values = dict(data)
        if "kinds" in values:
            values["kinds"] = tuple(values["kinds"])
        return cls(**values)


@dataclass
class _Face:
    id: str
    person_id: str | None
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 on a 1000x750 image


@dataclass
class _Asset:
    id: str
    type: str
    created_at: datetime
    updated_at: datetime
    taken_at: datetime
    file_name: str
    visibility: str
    trashed: bool
    checksum: str
    faces: list[_Face] = field(default_factory=list)
    city: str | None = None
    country: str | None = None
    description: str | None = None
    is_favorite: bool = False
    device_asset_id: str = ""
    device_id: str = "fake-immich"
    owner_id: str = ""  # "": the API key's user
    exif_read: bool = True  # False: a library asset whose metadata was not extracted yet
    extract_at: datetime | None = None  # when extraction reads it (None: queue paused)
    exif_taken_at: datetime | None = None  # the date in the file, set by extraction
    video_size: int | None = None  # bytes of a video's playback file (None: a short clip)
    preview_size: int | None = None  # bytes of its preview picture (None: a tiny JPEG)

    def person_ids(self) -> set[str]:
        return {f.person_id for f in self.faces if f.person_id is not None}

    def sort_key(self) -> tuple[datetime, str]:
        return self.taken_at, self.id


@dataclass
class _Person:
    id: str
    name: str
    has_thumbnail: bool
    is_hidden: bool
    updated_at: datetime
    birth_date: date | None = None
    owner_id: str = ""  # people belong to one user ("": the first API key's user)


@dataclass
class _Memory:
    id: str
    year: int
    memory_at: datetime  # the day of that past year
    show_at: datetime
    hide_at: datetime
    asset_ids: list[str]
    owner_id: str = ""  # memories are made per user, from their own assets


@dataclass
class _Album:
    id: str
    name: str
    asset_ids: list[str]
    created_at: datetime
    updated_at: datetime
    owner_id: str = ""  # "": the API key's user
    shared_with: list[str] = field(default_factory=list)  # user ids (editors)


@dataclass
class _User:
    id: str
    name: str
    email: str
    key_id: str = ""


class _ApiError(Exception):
    """An error answered as Immich's JSON error body."""

    def __init__(self, status: int, message: str | list[str]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _now() -> datetime:
    return _to_ms(datetime.now(UTC))


def _to_ms(moment: datetime) -> datetime:
    """Immich keeps timestamps to the millisecond (they pass through JavaScript dates)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(value: Json, name: str) -> datetime:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _to_ms(datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise _ApiError(400, [f"{name} must be a valid ISO 8601 date string"])


def _require_uuid(value: Json, name: str) -> str:
    if not isinstance(value, str) or not UUID_V4.match(value):
        raise _ApiError(400, [f"{name} must be a UUID"])
    return value


def _parse_bool(value: str | None, name: str) -> bool | None:
    if value is None:
        return None
    if value in ("true", "false"):
        return value == "true"
    raise _ApiError(400, [f"{name} must be a boolean value"])


def _parse_int(value: Json, name: str, *, default: int, low: int, high: int) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _ApiError(400, [f"{name} must be an integer number"]) from None
    if isinstance(value, float) and value != number:
        raise _ApiError(400, [f"{name} must be an integer number"])
    if number < low:
        raise _ApiError(400, [f"{name} must not be less than {low}"])
    if number > high:
        raise _ApiError(400, [f"{name} must not be greater than {high}"])
    return number


@functools.lru_cache(maxsize=4096)
def _picture(key: str, size: str) -> tuple[bytes, str]:
    encode, content_type, width, height = THUMBNAIL_SIZES[size]
    return encode(images.colour_for(key), width, height), content_type


def padded(jpeg: bytes, size: int) -> bytes:
    """A JPEG grown to ``size`` bytes: decoders ignore what follows its end marker."""
    return jpeg + bytes(max(0, size - len(jpeg)))


def asset_picture(asset_id: str, size: str = "preview") -> bytes:
    """The bytes the fake serves as ``size`` picture of an asset (for test assertions)."""
    return _picture(asset_id, size)[0]


def person_picture(person_id: str) -> bytes:
    """The bytes the fake serves as a person's face thumbnail."""
    return images.jpeg(images.colour_for(person_id), 16, 16)


# --- person search: Postgres pg_trgm word similarity, as Immich asks for it -----------------

PERSON_SEARCH_LIMIT = 100
PERSON_SEARCH_THRESHOLD = 0.5  # Immich sets pg_trgm.word_similarity_threshold to 0.5
_WORD = re.compile(r"[^\W_]+")  # pg_trgm splits on anything that is not a letter or digit


def _unaccent(text: str) -> str:
    """Postgres' ``unaccent`` (near enough): drop the accents, keep the letters."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _word_trigrams(text: str) -> list[list[str]]:
    """Per word, its trigrams in order: lower case, two blanks before and one after."""
    words = _WORD.findall(_unaccent(text).lower())
    return [[f"  {w} "[i : i + 3] for i in range(len(w) + 1)] for w in words]


def _calc_similarity(common: int, query: int, extent: int) -> float:
    return common / (query + extent - common) if query + extent - common else 0.0


def word_similarity(query: str, name: str, *, strict: bool = False) -> float:
    """pg_trgm's ``word_similarity(query, name)``: the best similarity between the query's
    trigrams and any run of the name's trigrams (``strict``: runs of whole words only)."""
    wanted = {t for word in _word_trigrams(query) for t in word}
    words = _word_trigrams(name)
    if not wanted or not words:
        return 0.0
    if strict:
        runs = [
            [t for w in words[i:j] for t in w]
            for i in range(len(words))
            for j in range(i + 1, len(words) + 1)
        ]
    else:
        flat = [t for w in words for t in w]
        runs = [flat[i:j] for i in range(len(flat)) for j in range(i + 1, len(flat) + 1)]
    best = 0.0
    for run in runs:
        extent = set(run)
        best = max(best, _calc_similarity(len(extent & wanted), len(wanted), len(extent)))
    return best


# --- search: which assets match a request, and in which order ---------------------------


@dataclass(frozen=True)
class _Query:
    """A validated search/metadata body."""

    predicates: tuple[Callable[[_Asset], bool], ...]
    descending: bool
    size: int
    page: int
    cursor: tuple[datetime, str] | None
    with_people: bool
    with_exif: bool


def _time_predicate(
    attribute: str, value: Json, name: str, compare: Callable[[datetime, datetime], bool]
) -> Callable[[_Asset], bool]:
    bound = _parse_time(value, name)
    return lambda a: compare(getattr(a, attribute), bound)


def _flat_predicates(body: Mapping[str, Json]) -> list[Callable[[_Asset], bool]]:
    checks: list[Callable[[_Asset], bool]] = []
    bounds = {
        "createdAfter": ("created_at", lambda x, y: x >= y),
        "createdBefore": ("created_at", lambda x, y: x <= y),
        "updatedAfter": ("updated_at", lambda x, y: x >= y),
        "updatedBefore": ("updated_at", lambda x, y: x <= y),
        "takenAfter": ("taken_at", lambda x, y: x >= y),
        "takenBefore": ("taken_at", lambda x, y: x <= y),
    }
    for name, (attribute, compare) in bounds.items():
        if body.get(name) is not None:
            checks.append(_time_predicate(attribute, body[name], name, compare))
    if body.get("personIds") is not None:
        wanted = body["personIds"]
        if not isinstance(wanted, list):
            raise _ApiError(400, ["personIds must be an array"])
        people = {_require_uuid(p, "each value in personIds") for p in wanted}
        checks.append(lambda a: people <= a.person_ids())
    if body.get("type") is not None:
        kind = body["type"]
        if kind not in ASSET_TYPES:
            raise _ApiError(400, [f"type must be one of the following values: {ASSET_TYPES}"])
        checks.append(lambda a: a.type == kind)
    if body.get("visibility") is not None:
        visibility = body["visibility"]
        if visibility not in VISIBILITIES:
            raise _ApiError(400, [f"visibility must be one of: {', '.join(VISIBILITIES)}"])
        checks.append(lambda a: a.visibility == visibility)
    for name in ("id", "checksum"):
        if body.get(name) is not None:
            checks.append(_equals(name, body[name]))
    for name in ("city", "country"):  # null is a value here: "no city known"
        if name in body:
            checks.append(_equals(name, body[name]))
    for name, attribute in (("originalFileName", "file_name"), ("description", "description")):
        if body.get(name) is not None:
            checks.append(_contains(attribute, str(body[name])))
    if body.get("isFavorite") is not None:
        favourite = bool(body["isFavorite"])
        checks.append(lambda a: a.is_favorite == favourite)
    return checks


def _equals(attribute: str, expected: Json) -> Callable[[_Asset], bool]:
    return lambda asset: bool(getattr(asset, attribute) == expected)


def _contains(attribute: str, needle: str) -> Callable[[_Asset], bool]:
    lowered = needle.lower()
    return lambda asset: lowered in (getattr(asset, attribute) or "").lower()


def _filter_predicate(spec: Json, where: str) -> Callable[[_Asset], bool]:
    """The 3.2 ``filter`` object: every condition holds, and one ``or`` branch if any."""
    if not isinstance(spec, dict):
        raise _ApiError(400, [f"{where} must be an object"])
    checks: list[Callable[[_Asset], bool]] = []
    branches: list[Callable[[_Asset], bool]] = []
    for key, condition in spec.items():
        if key == "or":
            if not isinstance(condition, list) or not condition:
                raise _ApiError(400, [f"{where}.or must be a non-empty array"])
            branches = [_filter_predicate(b, f"{where}.or.{i}") for i, b in enumerate(condition)]
            continue
        operators = _FILTER_OPERATORS.get(key)
        if operators is None:  # Immich strips what it does not know
            continue
        if not isinstance(condition, dict) or not condition:
            raise _ApiError(400, [f"{where}.{key} must be a non-empty object"])
        for operator, value in condition.items():
            if operator not in operators:
                continue
            checks.append(_filter_condition(key, operator, value, f"{where}.{key}.{operator}"))

    def matches(asset: _Asset) -> bool:
        if not all(check(asset) for check in checks):
            return False
        return not branches or any(branch(asset) for branch in branches)

    return matches


def _filter_condition(key: str, operator: str, value: Json, name: str) -> Callable[[_Asset], bool]:
    if key == "personIds":
        if not isinstance(value, list):
            raise _ApiError(400, [f"{name} must be an array"])
        people = {_require_uuid(p, f"each value in {name}") for p in value}
        if operator == "any":
            return lambda a: bool(people & a.person_ids())
        if operator == "all":
            return lambda a: people <= a.person_ids()
        return lambda a: not people & a.person_ids()
    if key == "createdAt":
        compare: dict[str, Callable[[datetime, datetime], bool]] = {
            "gte": lambda x, y: x >= y,
            "gt": lambda x, y: x > y,
            "lte": lambda x, y: x <= y,
            "lt": lambda x, y: x < y,
        }
        return _time_predicate("created_at", value, name, compare[operator])
    if key == "visibility":
        allowed = value if operator == "in" else [value]
        if not isinstance(allowed, list) or not set(allowed) <= set(VISIBILITIES):
            raise _ApiError(400, [f"{name} must be one of: {', '.join(VISIBILITIES)}"])
        return lambda a: a.visibility in allowed
    if key == "type":
        if value not in ASSET_TYPES:
            raise _ApiError(400, [f"{name} must be one of: {', '.join(ASSET_TYPES)}"])
        return lambda a: a.type == value
    if not isinstance(value, bool):
        raise _ApiError(400, [f"{name} must be a boolean value"])
    return lambda a: bool(a.person_ids()) == value


def _mentions_visibility(spec: Json) -> bool:
    if not isinstance(spec, dict):
        return False
    return "visibility" in spec or any(_mentions_visibility(b) for b in spec.get("or") or ())


def _encode_cursor(asset: _Asset) -> str:
    raw = json.dumps([_iso(asset.taken_at), asset.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: Json) -> tuple[datetime, str]:
    try:
        padded = str(cursor) + "=" * (-len(str(cursor)) % 4)
        taken, asset_id = json.loads(base64.urlsafe_b64decode(padded))
        return _parse_time(taken, "cursor"), str(asset_id)
    except (ValueError, TypeError, _ApiError):
        raise _ApiError(400, ["cursor is invalid"]) from None


@dataclass(frozen=True)
class Hostile:
    """Spoil the answers to API requests under ``paths`` (prefixes), ``times`` of them (None:
    all), the way a broken server or a reverse proxy in front of Immich does.

    ``truncated_json`` cuts the real JSON answer in half; ``wrong_types`` swaps every value for
    one of another type; ``missing_fields`` drops ``MISSING_FIELDS`` from every object;
    ``huge_error_body`` answers 500 with a 10 MB JSON message; ``html_login_page`` answers 200
    ``text/html`` with a login form (an SSO proxy whose session expired).
    """

    kind: str
    paths: tuple[str, ...] = ("/api/",)
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in HOSTILE_KINDS:
            raise ValueError(f"hostile kind must be one of {HOSTILE_KINDS}, not {self.kind!r}")


def _wrong_types(value: Json) -> Json:
    if isinstance(value, dict):
        return {key: _wrong_types(item) for key, item in value.items()}
    if isinstance(value, list):
        return {"not": "a list"}
    if isinstance(value, bool):
        return "yes"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return 12345
    return value


def _missing_fields(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _missing_fields(v) for k, v in value.items() if k not in MISSING_FIELDS}
    if isinstance(value, list):
        return [_missing_fields(item) for item in value]
    return value


def _spoil(kind: str, response: web.StreamResponse | None) -> web.StreamResponse:
    """The hostile version of ``response`` (None for kinds that never ask the real handler)."""
    if kind == "html_login_page":
        return web.Response(status=200, text=LOGIN_PAGE, content_type="text/html")
    if kind == "huge_error_body":
        message = "x" * HUGE_ERROR_BYTES
        return web.json_response({"message": message, "statusCode": 500}, status=500)
    if response is None:
        return web.Response(status=500)
    body = response.body if isinstance(response, web.Response) else None
    if not isinstance(body, bytes) or "json" not in response.content_type:
        return response
    if kind == "truncated_json":
        return web.Response(
            status=response.status,
            body=body[: max(1, len(body) // 2)],
            content_type="application/json",
        )
    data = json.loads(body)
    spoiled = _wrong_types(data) if kind == "wrong_types" else _missing_fields(data)
    return web.json_response(spoiled, status=response.status)


# --- the server ----------------------------------------------------------------------------


class FakeImmich:
    """An Immich server in the test's event loop; ``async with FakeImmich() as immich``."""

    def __init__(
        self,
        *,
        version: tuple[int, int, int] = (2, 7, 5),
        api_key: str = "test-api-key",
        permissions: Sequence[str] = ("all",),
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        core_plugin: bool = True,
    ) -> None:
        self.version = version
        # When extraction jobs come due (tests that move time pass theirs); else the wall clock.
        self.clock: Callable[[], datetime] = clock or _now
        self.api_key = api_key
        self.permissions = list(permissions)
        self.requests: list[RecordedRequest] = []
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._faults: Faults | None = None
        self._fault_random = random.Random(0)
        self._tie_random = random.Random(0)
        self.hostile: Hostile | None = None
        self.hostile_answers = 0  # how many answers were spoiled so far
        self._assets: dict[str, _Asset] = {}
        self._ordered: list[_Asset] | None = None  # ascending by sort key; None when stale
        self._by_checksum: dict[tuple[str, str], str] = {}  # (owner, checksum) -> asset id
        self._people: dict[str, _Person] = {}
        self._albums: dict[str, _Album] = {}
        self._users: dict[str, _User] = {}
        self._memories: list[_Memory] = []
        self._memories_covered: date | None = None  # the last day the memory job covered
        self._owner_id = str(uuid.uuid4())
        self._key_id = str(uuid.uuid4())
        self._user_keys: dict[str, str] = {}  # another user's API key -> that user's id
        self._revoked: set[str] = set()  # API keys deleted in Immich (answer 401)
        # (sharer, receiver) -> whether the receiver shows the sharer's photos in their timeline
        self._partners: dict[tuple[str, str], bool] = {}
        self._started_at = _now()
        self._counter = 0
        self.extraction_paused = False
        self.extract_step = timedelta(milliseconds=1)  # one asset read per step
        # workflows and their webhook calls
        self.workflows = FakeWorkflows(self, core_plugin=core_plugin)
        self.shared_links = FakeSharedLinks(self)  # shared links, and video playback

    # -- lifecycle

    @property
    def url(self) -> str:
        """Base URL without ``/api``, e.g. ``http://127.0.0.1:43121``."""
        if self._url is None:
            raise RuntimeError("the fake Immich is not running; use 'async with' or start()")
        return self._url

    @property
    def is_v3(self) -> bool:
        return self.version >= (3, 0, 0)

    @property
    def breaks_ties(self) -> bool:
        """3.x sorts search results taken at the same moment by id; 2.x leaves them as they
        come (3.1.0 and 2.7.5 checked; 3.0 assumed to be like 3.1)."""
        return self.is_v3

    @property
    def has_search_filter(self) -> bool:
        return self.version >= (3, 2, 0)

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=512 * 1024**2)
        self._add_routes(app)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"

    async def stop(self) -> None:
        await self.workflows.stop()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> FakeImmich:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- faults and recording

    @property
    def faults(self) -> Faults | None:
        return self._faults

    @faults.setter
    def faults(self, faults: Faults | None) -> None:
        self._faults = faults
        self._fault_random = random.Random(faults.seed if faults else 0)

    def reset_requests(self) -> None:
        self.requests.clear()

    def api_requests(
        self, method: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, optionally only those with this method and path."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        ]

    # -- state helpers (synchronous, for tests)

    def add_person(
        self,
        name: str,
        *,
        with_thumbnail: bool = True,
        hidden: bool = False,
        birth_date: date | str | None = None,
        owner: str | None = None,
    ) -> str:
        """A person in ``owner``'s library (a user id from ``add_user``; default: the first
        key's user). Like Immich's, people belong to one user: only their key sees them."""
        born = date.fromisoformat(birth_date) if isinstance(birth_date, str) else birth_date
        person = _Person(
            str(uuid.uuid4()), name, with_thumbnail, hidden, _now(), born, self._local(owner)
        )
        self._people[person.id] = person
        return person.id

    def name_person(self, person_id: str, name: str) -> None:
        """Give a person a name, as ``PUT /people/{id}`` from Immich's web app does."""
        person = self._people[person_id]
        person.name = name
        person.updated_at = _now()

    def run_memory_job(self, today: date | None = None) -> int:
        """Immich's nightly ``memory-create``: one ``on_this_day`` memory per past year with
        timeline photos taken on that month-day, for today and 3 days either side; like
        Immich, it remembers the last day it covered and never covers a day twice (photos
        added later miss today's memories). Returns how many memories it created."""
        today = today or _now().date()
        first = today - timedelta(days=MEMORY_DAYS_AROUND)
        if self._memories_covered is not None:
            first = max(first, self._memories_covered + timedelta(days=1))
        last = today + timedelta(days=MEMORY_DAYS_AROUND)
        created = 0
        day = first
        while day <= last:
            by_year: dict[tuple[str, int], list[_Asset]] = {}
            for asset in self._ordered_assets():
                taken = asset.taken_at
                if (
                    (taken.month, taken.day) == (day.month, day.day)
                    and taken.year < day.year
                    and asset.visibility == "timeline"
                    and not asset.trashed
                ):
                    by_year.setdefault((asset.owner_id, taken.year), []).append(asset)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            for (owner, year), assets in sorted(by_year.items()):
                self._memories.append(
                    _Memory(
                        id=str(uuid.uuid4()),
                        year=year,
                        memory_at=start.replace(year=year),
                        show_at=start,
                        hide_at=start + timedelta(days=1) - timedelta(milliseconds=1),
                        asset_ids=[a.id for a in assets],
                        owner_id=owner,
                    )
                )
                created += 1
            day += timedelta(days=1)
        self._memories_covered = max(last, self._memories_covered or last)
        return created

    def add_asset(self, **fields: Any) -> str:
        """Add one asset; the keywords are those of ``add_assets_bulk`` (``people`` are person
        ids recognised on it; ``unrecognised_faces`` are detected faces that ``recognise``
        assigns first)."""
        return self.add_assets_bulk(1, **fields)[0]

    def add_assets_bulk(
        self,
        n: int,
        *,
        type: str = "IMAGE",
        created_at: datetime | None = None,
        taken_at: datetime | None = None,
        people: Sequence[str] = (),
        visibility: str = "timeline",
        trashed: bool = False,
        city: str | None = None,
        country: str | None = None,
        file_name: str | None = None,
        description: str | None = None,
        unrecognised_faces: int = 0,
        upload_gap: timedelta = timedelta(milliseconds=1),
        owner: str | None = None,
        announce: bool = True,
        video_size: int | None = None,
        preview_size: int | None = None,
    ) -> list[str]:
        """Add ``n`` assets alike but for their ids and upload times (a library import landing
        at once). Like Immich's ``createdAt``, no two uploads share a moment: the last is
        created at ``created_at``, each other ``upload_gap`` before the next (Immich keeps
        microseconds and shows milliseconds). Unless ``taken_at`` is given, each was taken
        when it was uploaded. ``owner``: a user id from ``add_user`` (default: the API key's
        user). ``video_size``: the bytes of a video's playback file; ``preview_size``: the
        bytes of the preview picture (as a phone photo's, instead of a tiny one)."""
        if owner is not None and owner not in self._users:
            raise ValueError(f"unknown user id {owner}; add it with add_user first")
        if type not in ASSET_TYPES:
            raise ValueError(f"asset type must be one of {ASSET_TYPES}, not {type!r}")
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
        unknown = [p for p in people if p not in self._people]
        if unknown:
            raise ValueError(f"unknown person ids {unknown}; add them with add_person first")
        last = _to_ms(created_at) if created_at else _now()
        extension = "mp4" if type == "VIDEO" else "jpg"
        ids = []
        for index in range(n):
            created = last - upload_gap * (n - 1 - index)
            taken = _to_ms(taken_at) if taken_at else _to_ms(created)
            self._counter += 1
            asset_id = str(uuid.uuid4())
            checksum = base64.b64encode(hashlib.sha1(asset_id.encode()).digest()).decode()
            asset = _Asset(
                id=asset_id,
                type=type,
                created_at=created,
                updated_at=created,
                taken_at=taken,
                file_name=file_name or f"IMG_{self._counter:05d}.{extension}",
                visibility=visibility,
                trashed=trashed,
                checksum=checksum,
                city=city,
                country=country,
                description=description,
                device_asset_id=f"fake-{self._counter}",
                owner_id=self._local(owner),
                video_size=video_size,
                preview_size=preview_size,
            )
            for person_id in people:
                asset.faces.append(self._new_face(asset, person_id))
            for _ in range(unrecognised_faces):
                asset.faces.append(self._new_face(asset, None))
            self._assets[asset_id] = asset
            self._by_checksum[(asset.owner_id, checksum)] = asset_id
            ids.append(asset_id)
        self._ordered = None
        for asset_id in ids:
            if announce:  # False: a library scan, whose workflow calls come one by one
                self.workflows.uploaded(asset_id, owner or "")
            else:
                self.workflows.fire("AssetCreate", asset_id, owner or "")
        return ids

    def library_scan(
        self,
        n: int,
        *,
        created_at: datetime | None = None,
        taken_at: datetime | None = None,
        exif_taken_at: datetime | None = None,
        extract_after: timedelta = timedelta(0),
        type: str = "IMAGE",
        file_name: str | None = None,
    ) -> list[str]:
        """An external library's scan of ``n`` new files: one INSERT, so every asset shares
        one ``createdAt`` (default now) and ``updatedAt``; ``fileCreatedAt`` is the files'
        mtime (``taken_at``, default the scan's moment). No exif row until metadata extraction
        reads each file, ``extract_after`` after the scan, one per ``extract_step`` (held while
        extraction is paused); it then moves ``updatedAt`` and, with ``exif_taken_at``,
        ``fileCreatedAt``."""
        created = _to_ms(created_at) if created_at else _now()
        ids = self.add_assets_bulk(
            n,
            type=type,
            created_at=created,
            taken_at=taken_at or created,
            file_name=file_name,
            upload_gap=timedelta(0),
            announce=False,
        )
        start = created + extract_after
        for index, asset_id in enumerate(ids):
            asset = self._assets[asset_id]
            asset.exif_read = False
            asset.device_id = "Library Import"
            asset.exif_taken_at = _to_ms(exif_taken_at) if exif_taken_at else None
            asset.extract_at = None if self.extraction_paused else start + self.extract_step * index
        return ids

    def pause_extraction(self) -> None:
        """Hold the metadata extraction queue (Immich's job queue paused, or stopped)."""
        self._extract_due()
        self.extraction_paused = True
        for asset in self._assets.values():
            asset.extract_at = None

    def resume_extraction(self) -> None:
        """Let the queue run again: the waiting files are read from now on, one per step."""
        self.extraction_paused = False
        waiting = sorted(
            (a for a in self._assets.values() if not a.exif_read), key=lambda a: a.created_at
        )
        now = _to_ms(self.clock())
        for index, asset in enumerate(waiting):
            asset.extract_at = now + self.extract_step * index

    def unread_count(self) -> int:
        """How many assets still wait for metadata extraction."""
        self._extract_due()
        return sum(1 for a in self._assets.values() if not a.exif_read)

    def _extract_due(self) -> None:
        """Run the extraction jobs whose time has come (the fake has no background tasks)."""
        now = _to_ms(self.clock())
        for asset in self._assets.values():
            if asset.exif_read or asset.extract_at is None or asset.extract_at > now:
                continue
            asset.exif_read = True
            asset.updated_at = asset.extract_at
            if asset.exif_taken_at is not None:
                asset.taken_at = asset.exif_taken_at
            asset.extract_at = None
            self._ordered = None
            self.workflows.fire("AssetMetadataExtraction", asset.id, asset.owner_id)

    def add_album(
        self,
        name: str,
        asset_ids: Sequence[str] = (),
        *,
        owner: str | None = None,
        shared_with: Sequence[str] = (),
    ) -> str:
        """An album of the API key's user (or of ``owner``), shared with ``shared_with`` (user
        ids; the key's user is ``key_user_id``)."""
        for user in (owner, *shared_with):
            if user is not None and user != self._owner_id and user not in self._users:
                raise ValueError(f"unknown user id {user}; add it with add_user first")
        album = _Album(
            str(uuid.uuid4()),
            name,
            list(asset_ids),
            _now(),
            _now(),
            owner_id="" if owner in (None, self._owner_id) else str(owner),
            shared_with=list(shared_with),
        )
        self._albums[album.id] = album
        return album.id

    def album_asset_ids(self, album_id: str) -> list[str]:
        return list(self._albums[album_id].asset_ids)

    def recognise(self, asset_id: str, person_id: str) -> None:
        """Assign a face to a person after the fact; like Immich, ``updatedAt`` stays put."""
        asset = self._asset(asset_id)
        if person_id not in self._people:
            raise ValueError(f"unknown person id {person_id}")
        for face in asset.faces:
            if face.person_id is None:
                face.person_id = person_id
                return
        asset.faces.append(self._new_face(asset, person_id))

    def rename_person(self, person_id: str, name: str) -> None:
        """As editing a person's name in Immich's web app (``PUT /people/{id}``): searches
        find them by the new name from then on."""
        person = self._people[person_id]
        person.name = name
        person.updated_at = _now()

    def merge_people(self, source_id: str, into_id: str) -> None:
        """As "merge people" in Immich's web app: the source's faces go to the other person
        and the source person is deleted (its id answers 400 from then on)."""
        for asset in self._assets.values():
            for face in asset.faces:
                if face.person_id == source_id:
                    face.person_id = into_id
        del self._people[source_id]

    def set_visibility(self, asset_id: str, visibility: str) -> None:
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
        asset = self._asset(asset_id)
        asset.visibility = visibility
        asset.updated_at = _now()

    def trash(self, asset_id: str) -> None:
        asset = self._asset(asset_id)
        asset.trashed = True
        asset.updated_at = _now()

    def asset_json(self, asset_id: str) -> dict[str, Json]:
        """The asset as GET /api/assets/{id} would answer."""
        return self._asset_json(self._asset(asset_id), with_people=True, with_exif=True)

    def memories_json(self) -> list[dict[str, Json]]:
        """Every memory as ``GET /api/memories`` answers it (for canned answers in tests)."""
        return [self._memory_json(m) for m in self._memories]

    def person_json(self, person_id: str) -> dict[str, Json]:
        return self._person_json(self._people[person_id])

    def album_json(self, album_id: str) -> dict[str, Json]:
        """An album as ``GET /api/albums`` lists it (for canned answers in tests)."""
        return self._album_json(self._albums[album_id], with_assets=False)

    def asset_description(self, asset_id: str) -> str | None:
        return self._asset(asset_id).description

    def _asset(self, asset_id: str) -> _Asset:
        try:
            return self._assets[asset_id]
        except KeyError:
            raise ValueError(f"unknown asset id {asset_id}") from None

    def _new_face(self, asset: _Asset, person_id: str | None) -> _Face:
        offset = 120 * len(asset.faces)
        return _Face(str(uuid.uuid4()), person_id, (100 + offset, 100, 200 + offset, 220))

    def _ordered_assets(self) -> list[_Asset]:
        if self._ordered is None:
            self._ordered = sorted(self._assets.values(), key=_Asset.sort_key)
        return self._ordered

    # -- JSON shapes

    def _person_json(self, person: _Person) -> dict[str, Json]:
        return {
            "id": person.id,
            "name": person.name,
            "birthDate": person.birth_date.isoformat() if person.birth_date else None,
            "thumbnailPath": f"/data/thumbs/{person.id}.jpeg" if person.has_thumbnail else "",
            "isHidden": person.is_hidden,
            "isFavorite": False,
            "updatedAt": _iso(person.updated_at),
        }

    def _face_json(self, face: _Face) -> dict[str, Json]:
        x1, y1, x2, y2 = face.box
        return {
            "id": face.id,
            "boundingBoxX1": x1,
            "boundingBoxY1": y1,
            "boundingBoxX2": x2,
            "boundingBoxY2": y2,
            "imageWidth": 1000,
            "imageHeight": 750,
            "sourceType": "machine-learning",
        }

    def _asset_json(self, asset: _Asset, *, with_people: bool, with_exif: bool) -> dict[str, Json]:
        data: dict[str, Json] = {
            "id": asset.id,
            "type": asset.type,
            "checksum": asset.checksum,
            "createdAt": _iso(asset.created_at),
            "updatedAt": _iso(asset.updated_at),
            "fileCreatedAt": _iso(asset.taken_at),
            "fileModifiedAt": _iso(asset.taken_at),
            "localDateTime": _iso(asset.taken_at),
            "originalFileName": asset.file_name,
            "originalPath": f"/data/library/admin/{asset.file_name}",
            "originalMimeType": "video/mp4" if asset.type == "VIDEO" else "image/jpeg",
            "ownerId": asset.owner_id or self._owner_id,
            "thumbhash": "k0oGLQaSVsN0BVhn2oq2Z5SQUQcZ",
            "hasMetadata": True,
            "isArchived": asset.visibility == "archive",
            "isEdited": False,
            "isFavorite": asset.is_favorite,
            "isOffline": False,
            "isTrashed": asset.trashed,
            "visibility": asset.visibility,
            "width": 1000,
            "height": 750,
            "libraryId": None,
            "livePhotoVideoId": None,
            "duplicateId": None,
        }
        video = asset.type == "VIDEO"
        if self.is_v3:
            data["duration"] = 12_000 if video else None
        else:
            data["duration"] = "00:00:12.000" if video else "0:00:00.00000"
            data["deviceAssetId"] = asset.device_asset_id
            data["deviceId"] = asset.device_id
        if with_exif and asset.exif_read:  # a left join: no row, no exifInfo
            data["exifInfo"] = {
                "city": asset.city,
                "country": asset.country,
                "state": None,
                "description": asset.description or "",
                "dateTimeOriginal": _iso(asset.taken_at),
                "exifImageWidth": 1000,
                "exifImageHeight": 750,
                "fileSizeInByte": 123_456,
                "make": None,
                "model": None,
                "latitude": None,
                "longitude": None,
                "timeZone": "UTC",
            }
        if with_people:
            data["people"] = self._asset_people_json(asset)
            if not self.is_v3:
                data["unassignedFaces"] = [
                    self._face_json(f) for f in asset.faces if f.person_id is None
                ]
        return data

    def _asset_people_json(self, asset: _Asset) -> list[dict[str, Json]]:
        people = []
        for person_id in dict.fromkeys(f.person_id for f in asset.faces if f.person_id):
            person = self._person_json(self._people[person_id])
            if not self.is_v3:  # 2.x lists each person's faces on the asset
                person["faces"] = [
                    self._face_json(f) for f in asset.faces if f.person_id == person_id
                ]
            people.append(person)
        return people

    def _memory_json(self, memory: _Memory) -> dict[str, Json]:
        return {
            "id": memory.id,
            "type": "on_this_day",
            "data": {"year": memory.year},
            "memoryAt": _iso(memory.memory_at),
            "showAt": _iso(memory.show_at),
            "hideAt": _iso(memory.hide_at),
            "createdAt": _iso(self._started_at),
            "updatedAt": _iso(self._started_at),
            "isSaved": False,
            "ownerId": self._real(memory.owner_id),
            "assets": [
                self._asset_json(self._assets[i], with_people=True, with_exif=True)
                for i in memory.asset_ids
                if i in self._assets and not self._assets[i].trashed
            ],
        }

    def _album_json(self, album: _Album, *, with_assets: bool) -> dict[str, Json]:
        members = [self._assets[i] for i in album.asset_ids]
        data: dict[str, Json] = {
            "id": album.id,
            "albumName": album.name,
            "description": "",
            "albumThumbnailAssetId": album.asset_ids[0] if album.asset_ids else None,
            "albumUsers": [],
            "assetCount": len(album.asset_ids),
            "createdAt": _iso(album.created_at),
            "updatedAt": _iso(album.updated_at),
            "hasSharedLink": False,
            "isActivityEnabled": True,
            "shared": bool(album.shared_with),
            "order": "desc",
        }
        if members:  # the newest updatedAt among the members: adding an old photo keeps it
            data["lastModifiedAssetTimestamp"] = _iso(max(a.updated_at for a in members))
            data["startDate"] = _iso(min(a.taken_at for a in members))
            data["endDate"] = _iso(max(a.taken_at for a in members))
        owner = self._user_json(album.owner_id or self._owner_id)
        shared = [{"user": self._user_json(u), "role": "editor"} for u in album.shared_with]
        if self.is_v3:  # 3.x lists the owner first among the album's users
            data["albumUsers"] = [{"user": owner, "role": "owner"}, *shared]
        else:
            data["albumUsers"] = shared
            data["ownerId"] = album.owner_id or self._owner_id
            data["owner"] = owner
            assets = members if with_assets else []
            data["assets"] = [
                self._asset_json(a, with_people=False, with_exif=False) for a in assets
            ]
        return data

    # -- HTTP plumbing

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/server/ping", self._ping)
        app.router.add_get("/api/server/version", self._server_version)
        app.router.add_get("/api/api-keys/me", self._api_key_me)
        app.router.add_get("/api/users/me", self._users_me)
        app.router.add_post("/api/search/metadata", self._search_metadata)
        app.router.add_get("/api/people", self._people_list)
        app.router.add_get("/api/search/person", self._search_person)
        app.router.add_get("/api/people/{id}", self._person)
        app.router.add_put("/api/people/{id}", self._person_update)
        app.router.add_get("/api/people/{id}/thumbnail", self._person_thumbnail)
        app.router.add_get("/api/people/{id}/statistics", self._person_statistics)
        app.router.add_get("/api/assets/{id}/thumbnail", self._asset_thumbnail)
        app.router.add_get("/api/assets/{id}", self._asset_get)
        app.router.add_put("/api/assets/{id}", self._asset_update)
        app.router.add_put("/api/assets", self._assets_bulk_update)
        app.router.add_post("/api/assets", self._asset_upload)
        app.router.add_get("/api/faces", self._faces)
        app.router.add_get("/api/albums", self._album_list)
        app.router.add_get("/api/albums/{id}", self._album_get)
        app.router.add_put("/api/albums/{id}/assets", self._album_add_assets)
        app.router.add_get("/api/timeline/buckets", self._timeline_buckets)
        app.router.add_get("/api/timeline/bucket", self._timeline_bucket)
        app.router.add_get("/api/memories", self._memories_list)
        app.router.add_post("/api/search/random", self._search_random)
        app.router.add_post("/api/search/statistics", self._search_statistics)
        app.router.add_post("/api/jobs", self._jobs_create)
        self.workflows.add_routes(app)
        self.shared_links.add_routes(app)
        control = ControlApi(self)
        app.router.add_post("/_fake/people", control.add_person)
        app.router.add_post("/_fake/assets", control.add_asset)
        app.router.add_post("/_fake/assets/bulk", control.add_assets_bulk)
        app.router.add_post("/_fake/albums", control.add_album)
        app.router.add_post("/_fake/recognise", control.recognise)
        app.router.add_post("/_fake/memory-job", control.memory_job)
        app.router.add_post("/_fake/visibility", control.set_visibility)
        app.router.add_post("/_fake/trash", control.trash)
        app.router.add_get("/_fake/requests", control.requests)
        app.router.add_post("/_fake/reset-requests", control.reset_requests)
        app.router.add_post("/_fake/faults", control.set_faults)
        app.router.add_post("/_fake/library-scan", control.library_scan)
        app.router.add_post("/_fake/extraction", control.extraction)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self._extract_due()
        if request.path.startswith("/_fake/"):
            return await handler(request)
        correlation_id = str(uuid.uuid4())
        body = await _json_body(request)
        fault = self._draw_fault(request.path)
        if fault is not None:
            return await self._inject(fault, request, body, correlation_id)
        hostile = self._draw_hostile(request.path)
        if hostile in ("html_login_page", "huge_error_body"):  # the proxy answers, not Immich
            response = _spoil(hostile, None)
            self._record(request, body, response.status, _body_size(response))
            return response
        try:
            response = await self._authorised(request, handler)
        except _ApiError as error:
            response = self._error(error.status, error.message, correlation_id)
        if hostile is not None:
            response = _spoil(hostile, response)
        if self.is_v3:
            response.headers["X-Correlation-ID"] = correlation_id
        self._record(request, body, response.status, _body_size(response))
        return response

    async def _authorised(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            status = request.match_info.http_exception.status
            raise _ApiError(status, f"Cannot {request.method} {request.path}")
        resource = request.match_info.route.resource
        route = (request.method, resource.canonical if resource else request.path)
        if route in _PERMISSIONS:
            given = request.headers.get("x-api-key")
            if not given:
                raise _ApiError(401, "Authentication required")
            caller = self._user_of_key(given)
            if caller is None:
                raise _ApiError(401, "Invalid API key")
            needed = _PERMISSIONS[route]
            if needed and "all" not in self.permissions and needed not in self.permissions:
                raise _ApiError(403, f"Missing required permission: {needed}")
            token = _CALLER.set(caller)
            try:
                return await handler(request)
            finally:
                _CALLER.reset(token)
        return await handler(request)

    def _user_of_key(self, given: str) -> str | None:
        if given in self._revoked:
            return None
        if hmac.compare_digest(given.encode(), self.api_key.encode()):
            return ""
        return self._user_keys.get(given)

    def _error(self, status: int, message: str | list[str], correlation_id: str) -> web.Response:
        body: dict[str, Json]
        if not self.is_v3:
            body = {
                "message": message,
                "error": _REASONS.get(status, "Error"),
                "statusCode": status,
                "correlationId": correlation_id,
            }
        elif isinstance(message, list):  # 3.x validates with zod: one issue per problem
            body = {"message": "Validation failed", "errors": [_issue(m) for m in message]}
        else:
            body = {"message": message}
        return web.json_response(body, status=status)

    def _record(self, request: web.Request, body: Json | None, status: int, size: int) -> None:
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), body, status, size)
        )

    def _draw_hostile(self, path: str) -> str | None:
        hostile = self.hostile
        if hostile is None or not path.startswith(hostile.paths):
            return None
        if hostile.times is not None and self.hostile_answers >= hostile.times:
            return None
        self.hostile_answers += 1
        return hostile.kind

    def _draw_fault(self, path: str) -> str | None:
        faults = self._faults
        if faults is None or not path.startswith(faults.paths):
            return None
        if self._fault_random.random() >= faults.rate:
            return None
        return self._fault_random.choice(faults.kinds)

    async def _inject(
        self, kind: str, request: web.Request, body: Json | None, correlation_id: str
    ) -> web.StreamResponse:
        assert self._faults is not None
        if kind in ("timeout", "drop"):
            self._record(request, body, 0, 0)
            if kind == "timeout":
                await asyncio.sleep(self._faults.timeout_delay)
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing more to send on an aborted connection
        if kind == "503":
            response = web.Response(
                status=503,
                text="<html><body><h1>503 Service Unavailable</h1></body></html>",
                content_type="text/html",
            )
        elif kind == "429":
            response = self._error(429, "Too Many Requests", correlation_id)
            response.headers["Retry-After"] = str(self._faults.retry_after)
        else:
            response = self._error(500, "Internal server error", correlation_id)
        self._record(request, body, response.status, _body_size(response))
        return response

    # -- endpoints

    async def _ping(self, request: web.Request) -> web.Response:
        return web.json_response({"res": "pong"})

    async def _server_version(self, request: web.Request) -> web.Response:
        major, minor, patch = self.version
        data: dict[str, Json] = {"major": major, "minor": minor, "patch": patch}
        if self.is_v3:
            data["prerelease"] = None
        return web.json_response(data)

    async def _users_me(self, request: web.Request) -> web.Response:
        return web.json_response(self.me_json(_CALLER.get()))

    def me_json(self, user_id: str | None = None) -> dict[str, Json]:
        """``GET /users/me`` of that user's key (default: the first key's), as Immich's
        ``UserAdminResponseDto``."""
        caller = self._local(user_id)
        data = self._user_json(self._real(caller))
        data.update(
            {
                "createdAt": _iso(self._started_at),
                "updatedAt": _iso(self._started_at),
                "deletedAt": None,
                "isAdmin": not caller,  # the first key's user set the server up
                "license": None,
                "oauthId": "",
                "quotaSizeInBytes": None,
                "quotaUsageInBytes": 0,
                "shouldChangePassword": False,
                "status": "active",
                "storageLabel": "admin" if not caller else None,
            }
        )
        return data

    async def _api_key_me(self, request: web.Request) -> web.Response:
        caller = _CALLER.get()
        return web.json_response(
            {
                "id": self._users[caller].key_id if caller else self._key_id,
                "name": "sidecar",
                "permissions": self.permissions,
                "createdAt": _iso(self._started_at),
                "updatedAt": _iso(self._started_at),
            }
        )

    def _parse_search(self, body: Json) -> _Query:
        if not isinstance(body, dict):
            raise _ApiError(400, ["body must be a JSON object"])
        allowed = set(_SEARCH_FIELDS_COMMON | _SEARCH_FIELDS_UNIMPLEMENTED)
        if not self.is_v3:
            allowed |= {"deviceAssetId", "deviceId"}
        if self.has_search_filter:
            allowed |= {"filter", "cursor"}
        # Immich strips fields it does not know and answers 200: a 3.2 filter sent to an older
        # server is ignored, and the search comes back unfiltered.
        body = {k: v for k, v in body.items() if k in allowed}
        if self.is_v3:
            self._check_strict_types(body)
        unimplemented = sorted(k for k in body if k in _SEARCH_FIELDS_UNIMPLEMENTED)
        if unimplemented:
            raise _ApiError(400, f"fake Immich does not implement search by {unimplemented}")
        predicates = _flat_predicates(body)
        if body.get("deviceAssetId") is not None:
            device_asset_id = body["deviceAssetId"]
            predicates.append(lambda a: a.device_asset_id == device_asset_id)
        if body.get("albumIds") is not None:
            predicates.append(self._album_predicate(body["albumIds"]))
        if body.get("albumIds") is None or not self.is_v3:
            predicates.append(self._in_timeline)  # 2.x: own (and partners') assets only
        if body.get("filter") is not None:
            predicates.append(_filter_predicate(body["filter"], "filter"))
        if body.get("visibility") is None and not _mentions_visibility(body.get("filter")):
            default = DEFAULT_SEARCH_VISIBILITY if self.is_v3 else ("timeline",)
            predicates.append(lambda a: a.visibility in default)
        if not body.get("withDeleted"):
            predicates.append(lambda a: not a.trashed)
        if body.get("withExif") and body.get("filter") is None:
            # The flat form inner-joins asset_exif; 3.2's filter form left-joins it.
            predicates.append(lambda a: a.exif_read)
        order = body.get("order") or "desc"
        if order not in ("asc", "desc"):
            raise _ApiError(400, ["order must be one of the following values: asc, desc"])
        cursor = _decode_cursor(body["cursor"]) if body.get("cursor") is not None else None
        if cursor is not None and body.get("page") is not None:
            raise _ApiError(400, ["page and cursor cannot be used together"])
        return _Query(
            predicates=tuple(predicates),
            descending=order == "desc",
            size=_parse_int(body.get("size"), "size", default=250, low=1, high=1000),
            page=_parse_int(body.get("page"), "page", default=1, low=1, high=2**53),
            cursor=cursor,
            with_people=bool(body.get("withPeople")),
            with_exif=bool(body.get("withExif")),
        )

    @staticmethod
    def _check_strict_types(body: Mapping[str, Json]) -> None:
        """3.x validates with zod: no number sent as a string, no date without a time zone."""
        problems = [
            f"{name} must be a number"
            for name in ("page", "size")
            if body.get(name) is not None
            and (isinstance(body[name], bool) or not isinstance(body[name], int | float))
        ]
        problems += [
            f"{name} must be a date-time with a time zone"
            for name in sorted(_DATE_FIELDS)
            if isinstance(body.get(name), str) and not _ZONED.search(body[name])
        ]
        if problems:
            raise _ApiError(400, problems)

    def _search(self, query: _Query) -> tuple[list[_Asset], bool]:
        """One page of matches, and whether more follow."""
        ordered = self._ordered_assets()
        candidates: Iterable[_Asset] = reversed(ordered) if query.descending else ordered
        if query.cursor is not None:
            after = query.cursor
            candidates = (
                a
                for a in candidates
                if (a.sort_key() < after if query.descending else a.sort_key() > after)
            )
            skip = 0
        else:
            skip = (query.page - 1) * query.size
        shuffle = query.cursor is None and not self.breaks_ties
        found: list[_Asset] = []
        for asset in candidates:
            if all(check(asset) for check in query.predicates):
                # Ties in the order are only settled once the whole run of them is known.
                if len(found) > skip + query.size and not (
                    shuffle and asset.taken_at == found[-1].taken_at
                ):
                    break
                found.append(asset)
        if shuffle:
            found = self._shuffle_ties(found)
        found = found[skip:]
        return found[: query.size], len(found) > query.size

    def _shuffle_ties(self, ordered: list[_Asset]) -> list[_Asset]:
        """2.x orders by fileCreatedAt alone: Postgres returns a run of ties in whatever order
        its plan gives, which may change from one request to the next; here it always does."""
        result: list[_Asset] = []
        start = 0
        for end in range(1, len(ordered) + 1):
            if end == len(ordered) or ordered[end].taken_at != ordered[start].taken_at:
                run = ordered[start:end]
                self._tie_random.shuffle(run)
                result.extend(run)
                start = end
        return result

    async def _search_metadata(self, request: web.Request) -> web.Response:
        query = self._parse_search(await _json_body(request))
        found, more = self._search(query)
        items = [
            self._asset_json(a, with_people=query.with_people, with_exif=query.with_exif)
            for a in found
        ]
        next_page = str(query.page + 1) if more else None
        assets: dict[str, Json] = {
            "total": len(items),
            "count": len(items),
            "items": items,
            "facets": [],
            "nextPage": next_page,
        }
        if self.has_search_filter:
            next_cursor = _encode_cursor(found[-1]) if more else None
            assets["nextCursor"] = next_cursor
            if query.cursor is not None:
                assets["nextPage"] = next_cursor
        albums = {"total": 0, "count": 0, "items": [], "facets": []}
        return web.json_response({"albums": albums, "assets": assets})

    async def _search_statistics(self, request: web.Request) -> web.Response:
        """``{total}`` of the assets a flat search would match; no exif join (whatever the
        body says: the statistics body has no ``withExif``), no paging."""
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, ["body must be a JSON object"])
        paging = {"page", "size", "withExif", "withPeople", "order", "withStacked"}
        body = {k: v for k, v in body.items() if k not in paging}
        query = self._parse_search(body)
        total = sum(1 for a in self._assets.values() if all(p(a) for p in query.predicates))
        return web.json_response({"total": total})

    async def _search_random(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, ["body must be a JSON object"])
        if self.is_v3:
            self._check_strict_types(body)
        predicates = _flat_predicates(body)
        predicates.append(self._in_timeline)
        if body.get("visibility") is None:
            default = DEFAULT_SEARCH_VISIBILITY if self.is_v3 else ("timeline",)
            predicates.append(lambda a: a.visibility in default)
        if not body.get("withDeleted"):
            predicates.append(lambda a: not a.trashed)
        if body.get("withExif"):
            predicates.append(lambda a: a.exif_read)  # an inner join, as search/metadata's
        size = _parse_int(body.get("size"), "size", default=250, low=1, high=1000)
        found = [a for a in self._ordered_assets() if all(p(a) for p in predicates)]
        self._tie_random.shuffle(found)
        # A bare array, unlike search/metadata's {assets: {items}} wrapper.
        return web.json_response(
            [
                self._asset_json(
                    a,
                    with_people=bool(body.get("withPeople")),
                    with_exif=bool(body.get("withExif")),
                )
                for a in found[:size]
            ]
        )

    async def _memories_list(self, request: web.Request) -> web.Response:
        kind = request.query.get("type")
        if kind is not None and kind != "on_this_day":
            raise _ApiError(400, ["type must be one of the following values: on_this_day"])
        when = request.query.get("for")
        moment: datetime | None = None
        if when is not None:
            if _PLAIN_DATE.match(when):  # 3.x: a date; 2.x accepts one too
                moment = datetime.fromisoformat(when).replace(tzinfo=UTC)
            elif self.is_v3:
                raise _ApiError(400, ["for must be a date (YYYY-MM-DD)"])
            else:
                moment = _parse_time(when, "for")
        shown = [
            m
            for m in self._memories
            if m.owner_id == _CALLER.get() and (moment is None or m.show_at <= moment <= m.hide_at)
        ]
        shown.sort(key=lambda m: m.memory_at, reverse=True)
        return web.json_response([self._memory_json(m) for m in shown])

    async def _jobs_create(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        if not isinstance(body, dict) or body.get("name") != "memory-create":
            raise _ApiError(400, ["fake Immich runs only the memory-create job"])
        self.run_memory_job()
        return web.Response(status=204)

    def _face_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for asset in self._assets.values():
            if asset.trashed or asset.visibility not in DEFAULT_SEARCH_VISIBILITY:
                continue
            for person_id in asset.person_ids():
                counts[person_id] = counts.get(person_id, 0) + 1
        return counts

    async def _people_list(self, request: web.Request) -> web.Response:
        with_hidden = _parse_bool(request.query.get("withHidden"), "withHidden") or False
        page = _parse_int(request.query.get("page"), "page", default=1, low=1, high=2**53)
        size = _parse_int(request.query.get("size"), "size", default=500, low=1, high=1000)
        counts = self._face_counts()
        visible = [
            p
            for p in self._people.values()
            if counts.get(p.id) and p.has_thumbnail and p.owner_id == _CALLER.get()
        ]
        listed = [p for p in visible if with_hidden or not p.is_hidden]
        listed.sort(key=lambda p: (p.is_hidden, p.name == "", p.name.lower(), -counts[p.id]))
        start = (page - 1) * size
        return web.json_response(
            {
                "people": [self._person_json(p) for p in listed[start : start + size]],
                "total": len(listed),
                "hidden": sum(1 for p in visible if p.is_hidden),
                "hasNextPage": start + size < len(listed),
            }
        )

    async def _search_person(self, request: web.Request) -> web.Response:
        name = request.query.get("name")
        if name is None:
            raise _ApiError(400, ["name must be a string"])
        if not name and not self.is_v3:
            raise _ApiError(400, ["name should not be empty"])
        with_hidden = _parse_bool(request.query.get("withHidden"), "withHidden") or False
        # Immich: f_unaccent(name) %> f_unaccent(query), ordered by strict word similarity
        # distance, LIMIT 100. Fuzzy: "Caroll" finds Carol, "lice" finds Alice, "ar" nothing.
        scored = [
            (word_similarity(name, p.name, strict=True), p.name, p)
            for p in self._people.values()
            if p.owner_id == _CALLER.get()
            and (with_hidden or not p.is_hidden)
            and word_similarity(name, p.name) >= PERSON_SEARCH_THRESHOLD
        ]
        scored.sort(key=lambda item: (-item[0], item[1]))
        return web.json_response([self._person_json(p) for _, _, p in scored[:PERSON_SEARCH_LIMIT]])

    def _find_person(self, request: web.Request) -> _Person:
        person_id = _require_uuid(request.match_info["id"], "id")
        person = self._people.get(person_id)
        if person is None or person.owner_id != _CALLER.get():
            raise _ApiError(400, "Not found or no person.read access")
        return person

    async def _person(self, request: web.Request) -> web.Response:
        return web.json_response(self._person_json(self._find_person(request)))

    async def _person_update(self, request: web.Request) -> web.Response:
        """``PUT /people/{id}`` (updatePerson): what Immich's web app sends when someone names
        a person, hides them or sets their birthday; fields it does not know are ignored."""
        person = self._find_person(request)
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, ["body must be a JSON object"])
        if "name" in body:
            if not isinstance(body["name"], str):
                raise _ApiError(400, ["name must be a string"])
            person.name = body["name"]
        if "isHidden" in body:
            if not isinstance(body["isHidden"], bool):
                raise _ApiError(400, ["isHidden must be a boolean value"])
            person.is_hidden = body["isHidden"]
        if "birthDate" in body:
            born = body["birthDate"]
            if born is not None and not (isinstance(born, str) and _PLAIN_DATE.match(born)):
                raise _ApiError(400, ["birthDate must be a valid ISO 8601 date string"])
            person.birth_date = date.fromisoformat(born) if born else None
        person.updated_at = _now()
        return web.json_response(self._person_json(person))

    async def _person_thumbnail(self, request: web.Request) -> web.Response:
        if self.is_v3:  # 3.x: 404 for an unknown person too; 2.x: the access check's 400
            person = self._people.get(_require_uuid(request.match_info["id"], "id"))
            if person is None or person.owner_id != _CALLER.get():
                raise _ApiError(404, "Person thumbnail not found")
        else:
            person = self._find_person(request)
        if not person.has_thumbnail:
            raise _ApiError(404, "Person thumbnail not found")
        return web.Response(body=person_picture(person.id), content_type="image/jpeg")

    async def _person_statistics(self, request: web.Request) -> web.Response:
        person = self._find_person(request)
        return web.json_response({"assets": self._face_counts().get(person.id, 0)})

    # -- for tests.fakes.fake_shared_links

    def caller(self) -> str:
        """The user whose key made the request being answered ("": the first key's)."""
        return _CALLER.get()

    def real_user_id(self, local: str) -> str:
        return self._real(local)

    def album_of(self, album_id: str) -> _Album | None:
        return self._albums.get(album_id)

    def may_share(self, asset_id: str) -> bool:
        """Immich's ``asset.share`` access: the asset's owner, or a partner of the owner."""
        asset = self._assets.get(asset_id)
        caller = _CALLER.get()
        return asset is not None and (
            asset.owner_id == caller or (asset.owner_id, caller) in self._partners
        )

    def find_asset(self, asset_id: str, permission: str) -> _Asset:
        return self._find_asset(asset_id, permission)

    def shared_asset_json(self, asset_id: str, show_metadata: bool) -> dict[str, Json]:
        """An asset as a shared link shows it: without exif unless the link shows metadata."""
        return self._asset_json(self._assets[asset_id], with_people=False, with_exif=show_metadata)

    def _find_asset(self, asset_id: str, permission: str) -> _Asset:
        asset = self._assets.get(_require_uuid(asset_id, "id"))
        if asset is None or not self._can_see_asset(asset):
            raise _ApiError(400, f"Not found or no {permission} access")
        return asset

    async def _asset_thumbnail(self, request: web.Request) -> web.Response:
        asset = self._find_asset(request.match_info["id"], "asset.view")
        size = request.query.get("size", "thumbnail")
        if size not in THUMBNAIL_SIZES:
            raise _ApiError(400, [f"size must be one of: {', '.join(THUMBNAIL_SIZES)}"])
        body, content_type = _picture(asset.id, size)
        if size == "preview" and asset.preview_size is not None:
            body = padded(body, asset.preview_size)
        return web.Response(body=body, content_type=content_type)

    async def _asset_get(self, request: web.Request) -> web.Response:
        asset = self._find_asset(request.match_info["id"], "asset.read")
        return web.json_response(self._asset_json(asset, with_people=True, with_exif=True))

    async def _asset_update(self, request: web.Request) -> web.Response:
        asset = self._find_asset(request.match_info["id"], "asset.update")
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise _ApiError(400, ["body must be a JSON object"])
        body = {k: v for k, v in body.items() if k in _UPDATE_ASSET_FIELDS}  # the rest: ignored
        if "visibility" in body and body["visibility"] not in VISIBILITIES:
            raise _ApiError(400, [f"visibility must be one of: {', '.join(VISIBILITIES)}"])
        if "description" in body:
            asset.description = str(body["description"])
        if "isFavorite" in body:
            asset.is_favorite = bool(body["isFavorite"])
        if "visibility" in body:
            asset.visibility = body["visibility"]
        if "dateTimeOriginal" in body:
            asset.taken_at = _parse_time(body["dateTimeOriginal"], "dateTimeOriginal")
            self._ordered = None
        asset.updated_at = _now()
        return web.json_response(self._asset_json(asset, with_people=True, with_exif=True))

    async def _assets_bulk_update(self, request: web.Request) -> web.Response:
        """``PUT /api/assets`` (AssetBulkUpdateDto): every id must be the key owner's (asset
        .update is an owner-only access check: a partner's or an album-shared asset answers
        400 like an unknown one), then 204 with no body."""
        body = await _json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
            raise _ApiError(400, ["ids must be an array"])
        assets = []
        for raw in body["ids"]:
            asset = self._assets.get(_require_uuid(raw, "ids"))
            if asset is None or asset.owner_id:
                raise _ApiError(400, "Not found or no asset.update access")
            assets.append(asset)
        for asset in assets:
            if "isFavorite" in body:
                asset.is_favorite = bool(body["isFavorite"])
            if "description" in body:
                asset.description = str(body["description"])
            asset.updated_at = _now()
        return web.Response(status=204)

    def is_favourite(self, asset_id: str) -> bool:
        return self._asset(asset_id).is_favorite

    async def _asset_upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise _ApiError(400, "Expected a multipart/form-data body")
        fields: dict[str, str] = {}
        data: bytes | None = None
        part_name = None
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.name == "assetData":
                data = await part.read()
                part_name = part.filename
            else:
                fields[part.name] = await part.text()
        required = ["fileCreatedAt", "fileModifiedAt"]
        if not self.is_v3:
            required += ["deviceAssetId", "deviceId"]
        problems = [f"{name} must be a string" for name in required if name not in fields]
        if data is None:
            problems.append("assetData is required")
        if problems:
            raise _ApiError(400, problems)
        assert data is not None
        taken = _parse_time(fields["fileCreatedAt"], "fileCreatedAt")
        _parse_time(fields["fileModifiedAt"], "fileModifiedAt")
        file_name = fields.get("filename") or part_name or "upload"
        extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
        if extension in VIDEO_EXTENSIONS:
            kind = "VIDEO"
        elif extension in IMAGE_EXTENSIONS:
            kind = "IMAGE"
        else:
            raise _ApiError(400, f"Unsupported file type {file_name}")
        checksum = base64.b64encode(hashlib.sha1(data).digest()).decode()
        # Like Immich, a file is a duplicate of the same user's asset only: the key's user
        # owns what it uploads.
        existing = self._by_checksum.get((_CALLER.get(), checksum))
        if existing is not None:
            return web.json_response({"id": existing, "status": "duplicate"}, status=200)
        visibility = fields.get("visibility", "timeline")
        if visibility not in VISIBILITIES:
            raise _ApiError(400, [f"visibility must be one of: {', '.join(VISIBILITIES)}"])
        asset_id = self.add_asset(
            type=kind,
            taken_at=taken,
            visibility=visibility,
            file_name=file_name,
            description=fields.get("description"),
            owner=_CALLER.get() or None,
        )
        asset = self._assets[asset_id]
        del self._by_checksum[(asset.owner_id, asset.checksum)]
        asset.checksum = checksum
        asset.is_favorite = fields.get("isFavorite") == "true"
        asset.device_asset_id = fields.get("deviceAssetId", asset.device_asset_id)
        asset.device_id = fields.get("deviceId", asset.device_id)
        self._by_checksum[(asset.owner_id, checksum)] = asset_id
        return web.json_response({"id": asset_id, "status": "created"}, status=201)

    async def _faces(self, request: web.Request) -> web.Response:
        asset = self._find_asset(request.query.get("id", ""), "face.read")
        faces = []
        for face in asset.faces:
            data = self._face_json(face)
            person = self._people.get(face.person_id) if face.person_id else None
            data["person"] = self._person_json(person) if person else None
            faces.append(data)
        return web.json_response(faces)

    def _find_album(self, request: web.Request, permission: str) -> _Album:
        album = self._albums.get(_require_uuid(request.match_info["id"], "id"))
        if album is None or not self._can_see_album(album):
            raise _ApiError(400, f"Not found or no {permission} access")
        return album

    async def _album_list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [self._album_json(a, with_assets=False) for a in self._listed_albums(request.query)]
        )

    async def _album_get(self, request: web.Request) -> web.Response:
        album = self._find_album(request, "album.read")
        without = _parse_bool(request.query.get("withoutAssets"), "withoutAssets") or False
        return web.json_response(self._album_json(album, with_assets=not without))

    async def _album_add_assets(self, request: web.Request) -> web.Response:
        album = self._find_album(request, "albumAsset.create")
        body = await _json_body(request)
        ids = body.get("ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            raise _ApiError(400, ["ids must be an array"])
        for asset_id in ids:
            _require_uuid(asset_id, "each value in ids")
        results: list[dict[str, Json]] = []
        for asset_id in ids:
            if asset_id in album.asset_ids:
                results.append({"id": asset_id, "success": False, "error": "duplicate"})
            elif asset_id not in self._assets:
                results.append({"id": asset_id, "success": False, "error": "no_permission"})
            else:
                album.asset_ids.append(asset_id)
                results.append({"id": asset_id, "success": True})
        if any(r["success"] for r in results):
            album.updated_at = _now()
        return web.json_response(results)

    # -- users, shared albums and album timelines (album rules)

    @property
    def key_user_id(self) -> str:
        """The id of the user the API key belongs to."""
        return self._owner_id

    def add_user(self, name: str, api_key: str | None = None) -> str:
        """Another Immich user (to own assets and share albums with the key's user); with
        ``api_key``, a key of their own that answers as them (their people, their assets and
        their partners', their memories)."""
        user = _User(
            str(uuid.uuid4()), name, f"{name.lower() or 'user'}@example.com", str(uuid.uuid4())
        )
        self._users[user.id] = user
        if api_key is not None:
            self._user_keys[api_key] = user.id
        return user.id

    def add_partner(self, sharer: str, receiver: str, *, in_timeline: bool = True) -> None:
        """``sharer`` shares their library with ``receiver`` (user ids; ``key_user_id`` for the
        first key's user). With ``in_timeline`` (Immich's "show in timeline"), the receiver's
        ``search/metadata`` and ``search/random`` return the sharer's assets too; their people
        stay the sharer's, so the receiver's person ids never match them."""
        self._partners[(self._local(sharer), self._local(receiver))] = in_timeline

    def revoke_key(self, api_key: str) -> None:
        """Delete an API key in Immich: it answers 401 until ``restore_key``."""
        self._revoked.add(api_key)

    def restore_key(self, api_key: str) -> None:
        self._revoked.discard(api_key)

    def _local(self, user_id: str | None) -> str:
        """A user id as assets and people keep it ("" for the first key's user)."""
        if user_id in (None, "", self._owner_id):
            return ""
        if user_id not in self._users:
            raise ValueError(f"unknown user id {user_id}; add it with add_user first")
        return str(user_id)

    def _real(self, local: str) -> str:
        return local or self._owner_id

    def _in_timeline(self, asset: _Asset) -> bool:
        """The caller's own assets and those of partners shown in their timeline."""
        caller = _CALLER.get()
        return asset.owner_id == caller or self._partners.get((asset.owner_id, caller), False)

    def add_to_album(self, album_id: str, asset_ids: Sequence[str]) -> None:
        """Add assets as a user in Immich's web app does: the album's ``updatedAt`` moves, the
        assets' own ``updatedAt`` (so ``lastModifiedAssetTimestamp``) does not."""
        album = self._albums[album_id]
        for asset_id in asset_ids:
            self._asset(asset_id)
            if asset_id not in album.asset_ids:
                album.asset_ids.append(asset_id)
        album.updated_at = _now()

    def remove_from_album(self, album_id: str, asset_ids: Sequence[str]) -> None:
        album = self._albums[album_id]
        album.asset_ids = [a for a in album.asset_ids if a not in set(asset_ids)]
        album.updated_at = _now()

    def share_album(self, album_id: str, user_ids: Sequence[str]) -> None:
        album = self._albums[album_id]
        album.shared_with = list(dict.fromkeys([*album.shared_with, *user_ids]))
        album.updated_at = _now()

    def _user_json(self, user_id: str) -> dict[str, Json]:
        user = self._users.get(user_id) or _User(user_id, "Admin", "admin@example.com")
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "avatarColor": "primary",
            "profileChangedAt": _iso(self._started_at),
            "profileImagePath": "",
        }

    def _can_see_album(self, album: _Album) -> bool:
        caller = _CALLER.get()
        return album.owner_id == caller or self._real(caller) in album.shared_with

    def _can_see_asset(self, asset: _Asset) -> bool:
        """Own assets, partners' assets, and other users' assets through an album the key's
        user can see."""
        caller = _CALLER.get()
        return (
            asset.owner_id == caller
            or (asset.owner_id, caller) in self._partners
            or any(
                asset.id in album.asset_ids
                for album in self._albums.values()
                if self._can_see_album(album)
            )
        )

    def _listed_albums(self, query: Mapping[str, str]) -> list[_Album]:
        """``GET /api/albums``: 2.x without a parameter lists the albums the key's user owns,
        ``shared=true`` the shared ones (owned and shared, or shared with them). 3.x lists
        every album they belong to, filtered by ``isOwned``/``isShared`` (``shared`` is
        ignored: it is not in 3.x's API)."""
        visible = [a for a in self._albums.values() if self._can_see_album(a)]
        if not self.is_v3:
            unknown = sorted(set(query) - {"shared", "assetId"})
            if unknown:
                raise _ApiError(400, [f"property {k} should not exist" for k in unknown])
            if query.get("assetId"):
                raise _ApiError(400, "fake Immich does not implement albums by assetId")
            shared = _parse_bool(query.get("shared"), "shared")
            if shared is None:
                return [a for a in visible if a.owner_id == _CALLER.get()]
            return [a for a in visible if bool(a.shared_with) == shared]
        if query.get("assetId") or query.get("id") or query.get("name"):
            raise _ApiError(400, "fake Immich does not implement albums by assetId, id or name")
        owned = _parse_bool(query.get("isOwned"), "isOwned")
        is_shared = _parse_bool(query.get("isShared"), "isShared")
        return [
            a
            for a in visible
            if (owned is None or (a.owner_id == _CALLER.get()) == owned)
            and (is_shared is None or bool(a.shared_with) == is_shared)
        ]

    def _album_predicate(self, album_ids: Json) -> Callable[[_Asset], bool]:
        if not isinstance(album_ids, list):
            raise _ApiError(400, ["albumIds must be an array"])
        members: list[set[str]] = []
        for album_id in album_ids:
            album = self._albums.get(_require_uuid(album_id, "each value in albumIds"))
            if album is None or not self._can_see_album(album):
                raise _ApiError(400, "Not found or no album.read access")
            members.append(set(album.asset_ids))
        return lambda a: all(a.id in m for m in members)

    def _timeline_album(self, request: web.Request) -> _Album:
        allowed = {"albumId", "timeBucket", "visibility", "isTrashed", "order", "withStacked"}
        unknown = sorted(set(request.query) - allowed)
        if unknown:
            raise _ApiError(400, f"fake Immich does not implement the timeline by {unknown}")
        album_id = request.query.get("albumId")
        if not album_id:
            raise _ApiError(400, "fake Immich implements album timelines only (albumId)")
        album = self._albums.get(_require_uuid(album_id, "albumId"))
        if album is None or not self._can_see_album(album):
            raise _ApiError(400, "Not found or no album.read access")
        return album

    def _timeline_members(
        self,
        album: _Album,
        month: tuple[int, int] | None = None,
    ) -> list[_Asset]:
        """An album's timeline (or one ``(year, month)`` of it): every member whoever owns it,
        newest taken first; trashed, hidden and locked ones are left out (an album shows
        archived ones)."""
        members = [self._assets[i] for i in album.asset_ids]
        if month is not None:
            year, number = month
            members = [a for a in members if a.taken_at.month == number and a.taken_at.year == year]
        members = [a for a in members if not a.trashed and a.visibility in ("timeline", "archive")]
        return sorted(members, key=_Asset.sort_key, reverse=True)

    async def _timeline_buckets(self, request: web.Request) -> web.Response:
        album = self._timeline_album(request)
        counts: dict[str, int] = {}
        for asset in self._timeline_members(album):
            bucket = _time_bucket(asset.taken_at)
            counts[bucket] = counts.get(bucket, 0) + 1
        return web.json_response([{"timeBucket": b, "count": c} for b, c in counts.items()])

    async def _timeline_bucket(self, request: web.Request) -> web.Response:
        album = self._timeline_album(request)
        wanted = request.query.get("timeBucket")
        if not wanted:
            raise _ApiError(400, ["timeBucket should not be empty"])
        try:
            month = datetime.strptime(wanted[:10], "%Y-%m-%d")
        except ValueError:
            raise _ApiError(400, ["timeBucket must be a date like 2024-05-01"]) from None
        members = self._timeline_members(album, (month.year, month.month))
        members = [a for a in members if a.exif_read]  # the bucket inner-joins asset_exif
        columns: dict[str, list[Json]] = {
            "id": [a.id for a in members],
            "ownerId": [a.owner_id or self._owner_id for a in members],
            "ratio": [1000 / 750 for _ in members],
            "isFavorite": [a.is_favorite for a in members],
            "visibility": [a.visibility for a in members],
            "isTrashed": [a.trashed for a in members],
            "isImage": [a.type == "IMAGE" for a in members],
            "thumbhash": ["k0oGLQaSVsN0BVhn2oq2Z5SQUQcZ" for _ in members],
            "fileCreatedAt": [_iso(a.taken_at) for a in members],
            "localOffsetHours": [0 for _ in members],
            "duration": [
                (12_000 if self.is_v3 else "0:00:12.000000") if a.type == "VIDEO" else None
                for a in members
            ],
            "projectionType": [None for _ in members],
            "livePhotoVideoId": [None for _ in members],
            "city": [a.city for a in members],
            "country": [a.country for a in members],
        }
        if self.is_v3:
            columns["createdAt"] = [_iso(a.created_at) for a in members]
        return web.json_response(columns)


def _time_bucket(taken: datetime) -> str:
    """The month an asset is shown under on a timeline, as Immich names it."""
    return f"{taken.year:04d}-{taken.month:02d}-01"


def _issue(problem: str) -> dict[str, Json]:
    """A validation problem as a zod issue: ``size must ...`` -> path ``["size"]``."""
    field, _, rest = problem.removeprefix("each value in ").partition(" ")
    path: list[Json] = [int(p) if p.isdigit() else p for p in field.split(".")]
    return {"code": "custom", "path": path, "message": rest or problem}


def _body_size(response: web.StreamResponse) -> int:
    body = response.body if isinstance(response, web.Response) else None
    return len(body) if isinstance(body, bytes | bytearray) else 0


async def _json_body(request: web.Request) -> Json | None:
    if request.content_type != "application/json" or not request.body_exists:
        return None
    try:
        return await request.json()
    except ValueError:
        raise _ApiError(400, "Unexpected token in JSON body") from None


class ControlApi:
    """``/_fake/...``: drive a fake that runs in another process (no auth)."""

    def __init__(self, fake: FakeImmich) -> None:
        self._fake = fake

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Json]:
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            raise web.HTTPBadRequest(text="body must be JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPBadRequest(text="body must be a JSON object")
        return body

    @staticmethod
    def _asset_kwargs(body: Mapping[str, Json]) -> dict[str, Json]:
        kwargs = dict(body)
        for name in ("created_at", "taken_at"):
            if kwargs.get(name) is not None:
                kwargs[name] = datetime.fromisoformat(str(kwargs[name]).replace("Z", "+00:00"))
        return kwargs

    async def _call(self, action: Callable[[], Json]) -> web.Response:
        try:
            return web.json_response(action())
        except (TypeError, ValueError, KeyError) as error:
            return web.json_response({"message": str(error)}, status=400)

    async def add_person(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: {"id": self._fake.add_person(**body)})

    async def add_asset(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: {"id": self._fake.add_asset(**self._asset_kwargs(body))})

    async def add_assets_bulk(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(
            lambda: {"ids": self._fake.add_assets_bulk(**self._asset_kwargs(body))}
        )

    async def add_album(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: {"id": self._fake.add_album(**body)})

    async def memory_job(self, request: web.Request) -> web.Response:
        body = await self._body(request) if request.can_read_body else {}
        today = body.get("today")
        return await self._call(
            lambda: {
                "created": self._fake.run_memory_job(
                    date.fromisoformat(today) if isinstance(today, str) else None
                )
            }
        )

    async def recognise(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: self._fake.recognise(**body))

    async def set_visibility(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: self._fake.set_visibility(**body))

    async def trash(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        return await self._call(lambda: self._fake.trash(**body))

    async def library_scan(self, request: web.Request) -> web.Response:
        """``{n, created_at?, taken_at?, exif_taken_at?, extract_after_seconds?}``."""
        kwargs = self._asset_kwargs(await self._body(request))
        if kwargs.get("exif_taken_at") is not None:
            kwargs["exif_taken_at"] = datetime.fromisoformat(
                str(kwargs["exif_taken_at"]).replace("Z", "+00:00")
            )
        seconds = kwargs.pop("extract_after_seconds", 0)
        return await self._call(
            lambda: {
                "ids": self._fake.library_scan(
                    **kwargs, extract_after=timedelta(seconds=float(seconds))
                )
            }
        )

    async def extraction(self, request: web.Request) -> web.Response:
        """``{"paused": true|false}``: hold or resume metadata extraction."""
        paused = (await self._body(request)).get("paused")
        if not isinstance(paused, bool):
            return web.json_response({"message": "paused must be true or false"}, status=400)
        if paused:
            self._fake.pause_extraction()
        else:
            self._fake.resume_extraction()
        return web.json_response({"paused": paused, "unread": self._fake.unread_count()})

    async def requests(self, request: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self._fake.requests])

    async def reset_requests(self, request: web.Request) -> web.Response:
        self._fake.reset_requests()
        return web.json_response(None)

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await self._body(request) if request.can_read_body else {}
        if not body:  # an empty body or {} switches faults off
            self._fake.faults = None
            return web.json_response(None)

        def install() -> Json:
            self._fake.faults = Faults.from_dict(body)
            return asdict(self._fake.faults)

        return await self._call(install)


def _parse_version(text: str) -> tuple[int, int, int]:
    parts = text.lstrip("v").split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"version must look like 2.7.5, not {text!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeImmich(
        version=args.version,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        core_plugin=not args.no_core_plugin,
    )
    await fake.start()
    print(fake.url, flush=True)
    print(
        f"fake Immich {'.'.join(map(str, args.version))} on {fake.url}; Ctrl-C to stop",
        file=sys.stderr,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await fake.stop()


def main(argv: Iterator[str] | Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.fake_immich", description="Run a fake Immich server."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--version", type=_parse_version, default=(2, 7, 5))
    parser.add_argument("--api-key", default="test-api-key")
    parser.add_argument(
        "--no-core-plugin",
        action="store_true",
        help="3.x without immich-plugin-core: workflows have no webhook step",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        asyncio.run(_serve(args))
    except OSError as error:
        print(f"fake Immich could not start: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
