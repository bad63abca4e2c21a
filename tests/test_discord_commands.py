"""/immich upload, person and status through the fake Discord with the real discord.py client;
plus the pure upload checks."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from sidecar.config.model import MemoriesCommand, Secret, UploadCommand
from sidecar.config.schema import schema_text
from sidecar.discord.bot import SidecarBot
from sidecar.discord.uploads.checks import (
    Named,
    sanitise_filename,
    size_refusal,
    sniff_media_type,
    upload_refusal,
)
from sidecar.engine.posts.plan import Plan, PlannedMessage
from sidecar.immich.models import Asset
from sidecar.messages.texts import SORRY
from sidecar.ops.metrics import Metrics
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import JPEG, FakeImmich, fixed_status, make_settings, start_bot

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64
ALBUM_ID = "0b6a4f7e-5d2c-4e8a-9a51-3f2d8c1b7e40"
UPLOAD = UploadCommand(allowed_roles=("uploaders",), album=ALBUM_ID, max_mb=1)


@pytest.fixture
def immich() -> FakeImmich:
    return FakeImmich()


@pytest.fixture
async def bot(fake, immich) -> AsyncIterator[SidecarBot]:
    bot, _ = await start_bot(fake, immich, Metrics(), make_settings(upload=UPLOAD))
    yield bot
    await bot.close()


def final_answer(fake: fd.FakeDiscord, token: str) -> dict[str, Any] | None:
    """The answer the user sees: a followup, or a callback that is not just "thinking"."""
    for response in fake.responses_for(token):
        if response["kind"] == "callback" and (response["payload"] or {}).get("type") == 5:
            continue  # "thinking"
        return response
    return None


async def command(
    fake: fd.FakeDiscord, name: str, options: list[dict[str, Any]], **kwargs: Any
) -> dict[str, Any]:
    token = await fake.interact([{"type": 1, "name": name, "options": options}], **kwargs)
    await fake.wait_for(lambda: final_answer(fake, token) is not None)
    answer = final_answer(fake, token)
    assert answer is not None
    return answer


def text_of(answer: dict[str, Any]) -> str:
    payload = answer["payload"] or {}
    return str(payload.get("content") or payload.get("data", {}).get("content", ""))


def assert_no_mentions(answer: dict[str, Any]) -> None:
    payload = answer["payload"]
    payload = payload.get("data", payload) if answer["kind"] == "callback" else payload
    assert payload["allowed_mentions"]["parse"] == []
    assert not payload["allowed_mentions"].get("roles")
    assert not payload["allowed_mentions"].get("users")


async def upload(
    fake, files, roles=(fd.UPLOADER_ROLE,), description=None, channel_id=fd.UPLOADS_CHANNEL
) -> dict[str, Any]:
    attachments = [fake.add_attachment(name, data, size=size) for name, data, size in files]
    options: list[dict[str, Any]] = [
        {"type": 11, "name": f"file{i + 1}", "value": a["id"]} for i, a in enumerate(attachments)
    ]
    if description is not None:
        options.append({"type": 3, "name": "description", "value": description})
    return await command(
        fake, "upload", options, roles=roles, attachments=attachments, channel_id=channel_id
    )


# ---------------------------------------------------------------------------- upload


@pytest.mark.parametrize(
    ("album", "added"),
    [
        ("from discord", {"8c0e5c8e-1d7a-4c43-9f43-7d1c2a9b0e11": ["new-1"]}),  # by name, any case
        ("Holidays", {}),
    ],
)
async def test_upload_album_may_be_named(fake, immich, album, added):
    settings = make_settings(upload=UploadCommand(allowed_roles=("uploaders",), album=album))
    bot, _ = await start_bot(fake, immich, Metrics(), settings)
    try:
        text = text_of(await upload(fake, [("beach.jpg", JPEG, None)]))
    finally:
        await bot.close()
    assert immich.albums == added
    assert ("Immich has no album called 'Holidays'" in text) == (not added)


async def test_upload_allowed_creates_describes_and_adds_to_album(fake, bot, immich):
    answer = await upload(
        fake,
        [("beach.jpg", JPEG, None), ("../../etc/clip\x07", MP4, None)],
        description="Summer @everyone",
    )
    text = text_of(answer)
    assert [u[0] for u in immich.uploads] == ["beach.jpg", "clip.mp4"]
    assert immich.uploads[0][1] == JPEG  # the bytes Discord served, unchanged
    assert [u[2] for u in immich.uploads] == ["image/jpeg", "video/mp4"]
    assert immich.descriptions == {"new-1": "Summer @everyone", "new-2": "Summer @everyone"}
    assert immich.albums == {ALBUM_ID: ["new-1", "new-2"]}
    assert "`beach.jpg`: uploaded, <https://photos.example.org/photos/new-1>" in text
    assert "`clip.mp4`: uploaded" in text
    assert answer["payload"]["flags"] & 64  # only the uploader sees the result
    assert_no_mentions(answer)
    first = fake.responses_for(answer["token"])[0]
    assert first["kind"] == "callback" and first["payload"]["type"] == 5  # deferred first


async def test_upload_refused_without_an_allowed_role(fake, bot, immich):
    answer = await upload(fake, [("beach.jpg", JPEG, None)], roles=(fd.MEMBER_ROLE,))
    assert "Refused: you do not have a role that may upload" in text_of(answer)
    assert immich.uploads == []


async def test_upload_refused_for_everyone_when_no_role_is_configured(fake, bot, immich):
    bot.update_settings(make_settings(upload=UploadCommand(allowed_roles=())))
    answer = await upload(fake, [("beach.jpg", JPEG, None)])
    assert "discord.commands.upload.allowed_roles" in text_of(answer)
    assert immich.uploads == []


async def test_upload_refused_outside_allowed_channels(fake, bot, immich):
    bot.update_settings(
        make_settings(
            upload=UploadCommand(
                allowed_roles=(str(fd.UPLOADER_ROLE),), allowed_channels=("uploads",)
            )
        )
    )
    answer = await upload(fake, [("beach.jpg", JPEG, None)], channel_id=fd.PHOTOS_CHANNEL)
    assert "not allowed in this channel" in text_of(answer)
    answer = await upload(fake, [("beach.jpg", JPEG, None)], channel_id=fd.UPLOADS_CHANNEL)
    assert "uploaded" in text_of(answer)


async def test_upload_too_big_is_refused_before_download(fake, bot, immich):
    answer = await upload(fake, [("huge.jpg", JPEG, 5 * 1024 * 1024), ("ok.png", PNG, None)])
    text = text_of(answer)
    assert "`huge.jpg`: refused, too big (5.0 MB; the limit is 1 MB)" in text
    assert "`ok.png`: uploaded" in text
    assert [u[0] for u in immich.uploads] == ["ok.png"]


async def test_upload_not_an_image_is_refused_by_content(fake, bot, immich):
    answer = await upload(fake, [("photo.jpg", b"#!/bin/sh\nrm -rf /\n", None)])
    assert "`photo.jpg`: refused, not a photo or video" in text_of(answer)
    assert immich.uploads == []


async def test_upload_duplicate_is_reported(fake, bot, immich):
    await upload(fake, [("a.jpg", JPEG, None)])
    answer = await upload(fake, [("again.jpg", JPEG, None)])
    assert "`again.jpg`: already in Immich, <https://photos.example.org/photos/new-1>" in (
        text_of(answer)
    )


# ---------------------------------------------------------------------------- person


async def test_person_found_with_face_and_count(fake, bot):
    answer = await command(fake, "person", [{"type": 3, "name": "name", "value": "alice"}])
    [embed] = answer["payload"]["embeds"]
    assert embed["title"] == "Alice"
    assert embed["description"] == "42 photos in Immich"
    assert embed["url"] == "https://photos.example.org/people/p-alice"
    assert embed["thumbnail"]["url"] == "attachment://face.jpg"
    assert answer["files"]["files[0]"] == ("face.jpg", b"\xff\xd8\xffFACE-alice")
    assert_no_mentions(answer)


async def test_person_not_found_echoes_name_harmlessly(fake, bot):
    answer = await command(fake, "person", [{"type": 3, "name": "name", "value": "@everyone"}])
    text = text_of(answer)
    assert text.startswith("No one called")
    assert "@everyone" not in text
    assert_no_mentions(answer)


async def test_person_autocomplete_lists_matching_names(fake, bot):
    token = await fake.interact(
        [
            {
                "type": 1,
                "name": "person",
                "options": [{"type": 3, "name": "name", "value": "ali", "focused": True}],
            }
        ],
        autocomplete=True,
    )
    await fake.wait_for(lambda: fake.responses_for(token))
    [response] = fake.responses_for(token)
    assert response["payload"]["type"] == 8
    assert response["payload"]["data"]["choices"] == [
        {"name": "Alice", "value": "Alice"},
        {"name": "Alicia", "value": "Alicia"},
    ]


async def test_immich_failure_is_a_polite_line_not_a_traceback(fake, bot, immich):
    async def broken(name: str) -> list[Any]:
        raise ConnectionError("immich down at http://immich:2283 with key immich-key")

    immich.search_person = broken
    answer = await command(fake, "person", [{"type": 3, "name": "name", "value": "bob"}])
    assert text_of(answer) == SORRY.singular
    assert "Traceback" not in text_of(answer)


# ---------------------------------------------------------------------------- status


async def test_status_reports_immich_poll_and_outbox(fake, bot):
    answer = await command(fake, "status", [])
    text = text_of(answer)
    assert "Immich: reachable (version 2.7.5)" in text
    assert "Last successful poll: <t:1714564800:R>" in text
    assert "Notifications waiting: 3" in text
    assert "Notifications that failed for good: 0" in text
    assert_no_mentions(answer)


# ---------------------------------------------------------------------------- pure checks


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (JPEG, "image/jpeg"),
        (PNG, "image/png"),
        (b"GIF89a" + b"\x00" * 10, "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 8, "image/heic"),
        (b"\x00\x00\x00\x18ftypmif1" + b"\x00" * 8, "image/heif"),
        (MP4, "video/mp4"),
        (b"\x00\x00\x00\x14ftypqt  " + b"\x00" * 8, "video/quicktime"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x84webm", "video/webm"),
        (b"\x1a\x45\xdf\xa3\x9fB\x86\x81\x01B\x82\x88matroska", "video/x-matroska"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"%PDF-1.7", None),
        (b"<html>", None),
        (b"", None),
    ],
)
def test_sniff_media_type(data, expected):
    assert sniff_media_type(data) == expected


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        ("IMG_1.JPG", "image/jpeg", "IMG_1.jpg"),
        ("../../etc/passwd", "image/png", "passwd.png"),
        ("C:\\Users\\x\\holiday.heic", "image/heic", "holiday.heic"),
        ("evil\x00name\u202e.jpg", "image/jpeg", "evilname.jpg"),
        ("photo.exe", "image/jpeg", "photo.exe.jpg"),
        ("...", "image/jpeg", "upload.jpg"),
        ("a<b>c|d?.mp4", "video/mp4", "a_b_c_d_.mp4"),
    ],
)
def test_sanitise_filename(name, media_type, expected):
    assert sanitise_filename(name, media_type) == expected


def test_sanitised_filename_is_bounded():
    assert len(sanitise_filename("x" * 1000 + ".jpg", "image/jpeg")) == 200


def test_size_refusal():
    assert size_refusal(1024 * 1024, 1) is None
    assert size_refusal(1024 * 1024 + 1, 1) == "too big (1.0 MB; the limit is 1 MB)"


def schema_key_exists(dotted: str) -> bool:
    node: Any = json.loads(schema_text())
    for part in dotted.split("."):
        node = node.get("properties", {}).get(part)
        if node is None:
            return False
    return True


def test_the_no_role_refusal_names_a_key_that_exists_in_the_config():
    refusal = upload_refusal((), (), [Named(2, "Uploaders")], Named(10, "uploads"))
    assert refusal is not None
    keys = re.findall(r"\b[a-z_]+(?:\.[a-z_]+)+\b", refusal)
    assert keys, refusal
    assert all(schema_key_exists(key) for key in keys), keys
    assert schema_key_exists("discord.commands.upload.allowed_roles")
    assert not schema_key_exists("discord.upload.allowed_roles")


def test_upload_refusal_rules():
    family, uploaders = Named(1, "family"), Named(2, "Uploaders")
    uploads = Named(10, "uploads")
    assert upload_refusal((), (), [uploaders], uploads) is not None  # safe default: nobody
    assert upload_refusal(("uploaders",), (), [family], uploads) is not None
    assert upload_refusal(("uploaders",), (), [uploaders], uploads) is None
    assert upload_refusal(("2",), (), [uploaders], uploads) is None
    assert upload_refusal(("@Uploaders",), ("#uploads",), [uploaders], uploads) is None
    assert upload_refusal(("uploaders",), ("11",), [uploaders], uploads) is not None


# ---------------------------------------------------------------------------- memories


def memories_plan(*messages: PlannedMessage) -> Callable[[], Awaitable[Plan]]:
    async def provide() -> Plan:
        return Plan(messages, "")

    return provide


async def start_memories_bot(fake, immich, provider, settings=None) -> SidecarBot:
    bot = SidecarBot(
        settings or make_settings(),
        immich,
        Metrics(),
        fixed_status,
        memories_provider=provider,
        guild_ready_timeout=0.05,
    )
    await bot.__aenter__()
    try:
        await bot.launch(Secret(fd.TOKEN), ready_timeout=10)
    except BaseException:
        await bot.close()
        raise
    return bot


async def test_memories_replies_with_todays_memories_one_embed_per_year(fake, immich):
    photo = Asset(
        "a-2023", "IMAGE", datetime(2023, 12, 1, tzinfo=UTC), None, "", "timeline", False, ()
    )
    provider = memories_plan(
        PlannedMessage(
            "2023",
            "📅 3 years ago today (2023): 1 photo @everyone",
            "https://photos.example.org/memory?id=m1",
            (photo,),
        ),
        PlannedMessage(
            "2020",
            "📅 6 years ago today (2020): 1 photo",
            "https://photos.example.org/memory?id=m2",
            (photo,),
        ),
    )
    bot = await start_memories_bot(fake, immich, provider)
    try:
        answer = await command(fake, "memories", [])
        first, second = answer["payload"]["embeds"]
        assert first["title"].startswith("📅 3 years ago today (2023)")
        assert first["url"] == "https://photos.example.org/memory?id=m1"
        assert first["image"]["url"] == "attachment://a-2023.jpg"
        assert second["url"] == "https://photos.example.org/memory?id=m2"
        assert_no_mentions(answer)
    finally:
        await bot.close()
    empty = await start_memories_bot(fake, immich, memories_plan())
    try:
        answer = await command(fake, "memories", [])
        assert text_of(answer) == "No memories for today in Immich."
    finally:
        await empty.close()


async def test_memories_respects_its_allow_list(fake, immich):
    settings = make_settings()
    settings = replace(
        settings,
        discord=replace(settings.discord, memories=MemoriesCommand(allowed_channels=("photos",))),
    )
    bot = await start_memories_bot(fake, immich, memories_plan(), settings)
    try:
        answer = await command(fake, "memories", [], channel_id=fd.UPLOADS_CHANNEL)
        assert text_of(answer) == "Refused: memories are not shown in this channel."
        assert_no_mentions(answer)
    finally:
        await bot.close()
