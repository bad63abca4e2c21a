"""What an ingest (or "Save to Immich") upload sends Immich, against both OpenAPI specs: the
upload takes no description in either version, so it follows as ``PUT /assets/{id}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import discord

from sidecar.config.model import Secret
from sidecar.discord.uploads.upload import AttachmentUploader
from sidecar.immich.client import ImmichClient
from sidecar.immich.permissions import INGEST
from sidecar.ops.metrics import Metrics
from tests.openapi import Spec, validate_httpx_request
from tests.test_immich_client import ALBUM_ID, ASSET_ID, BASE, KEY
from tests.test_immich_contract import canned, respx_immich, spec  # noqa: F401  (fixture)

JPEG = b"\xff\xd8\xff\xe0fake-jpeg"


@dataclass
class Attachment:
    """What the uploader reads of a discord.Attachment."""

    id: int
    filename: str
    size: int
    data: bytes

    async def read(self) -> bytes:
        return self.data


async def test_upload_with_description_and_album_matches_the_spec(spec: Spec) -> None:  # noqa: F811
    attachment = Attachment(1234567890123456789, "party.jpg", len(JPEG), JPEG)
    with respx_immich(spec, canned(spec.version)) as router:
        async with ImmichClient(BASE, Secret(KEY), Metrics()) as client:
            uploader = AttachmentUploader(client, lambda: "https://photos.example.org", INGEST)
            report = await uploader.upload(
                [cast(discord.Attachment, attachment)],
                max_mb=10,
                description="Uploaded by carol in #uploads",
                album=ALBUM_ID,
            )
        sent = [(c.request.method, c.request.url.path) for c in router.calls]
        for call in router.calls:
            validate_httpx_request(spec, call.request)
        put: Any = next(
            c.request
            for c in router.calls
            if c.request.method == "PUT" and c.request.url.path == f"/api/assets/{ASSET_ID}"
        )
        upload = next(c.request for c in router.calls if c.request.method == "POST")
    assert report.all_in and report.asset_ids == (ASSET_ID,)
    assert ("POST", "/api/assets") in sent and ("PUT", f"/api/albums/{ALBUM_ID}/assets") in sent
    assert json.loads(put.content) == {"description": "Uploaded by carol in #uploads"}
    assert b'name="description"' not in upload.content  # neither spec has it on the upload
