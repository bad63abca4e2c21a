"""Hostile Discord input through the fake Discord and the real bot: nasty file names, renamed
executables, empty and oversize files, many files at once, mention and markdown injection in
person searches. Replies never ping, never show a traceback; what reaches Immich is sanitised."""

# ruff: noqa: F811  (pytest fixtures imported from test_discord_commands)
from __future__ import annotations

import pytest

from sidecar.discord.uploads.checks import MAX_FILENAME_LENGTH
from tests.fakes import fake_discord as fd
from tests.test_discord_bot import JPEG
from tests.test_discord_commands import (  # noqa: F401  (fixtures)
    PNG,
    assert_no_mentions,
    bot,
    command,
    immich,
    text_of,
    upload,
)

ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 64
MZ = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64
BAD_NAME_CHARS = set('/\\<>:"|?*') | {chr(c) for c in range(32)} | {"\u202e", "\u200f", "\x7f"}


def assert_clean(answer) -> None:
    text = text_of(answer)
    assert "Traceback" not in text and 'File "' not in text
    assert_no_mentions(answer)


@pytest.mark.parametrize(
    "name",
    [
        "../../etc/passwd.jpg",
        "..\\..\\x.png",
        "/absolute/path.jpg",
        "evil\u202egpj.exe",
        "bell\x07\x1b[31mred.jpg",
        "new\nline.jpg",
        "\u200f\u202e.jpg",
        "C:\\Windows\\system32\\drivers\\etc\\hosts.jpg",
        "x" * 5000 + ".jpg",
        "....jpg",
        "@everyone.jpg",
    ],
)
async def test_upload_file_names_reach_immich_sanitised(fake, bot, immich, name):
    answer = await upload(fake, [(name, JPEG, None)])
    assert_clean(answer)
    [(sent, data, content_type)] = immich.uploads
    assert data == JPEG and content_type == "image/jpeg"
    assert not BAD_NAME_CHARS & set(sent), repr(sent)
    assert ".." not in sent and not sent.startswith(".")
    assert sent.endswith(".jpg") and 1 <= len(sent) <= MAX_FILENAME_LENGTH
    assert "passwd" not in text_of(answer) or "etc" not in text_of(answer)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cat.jpg", ELF),
        ("holiday.png", MZ),
        ("empty.jpg", b""),
        ("script.jpg", b"#!/bin/sh\n"),
    ],
)
async def test_files_that_are_not_pictures_are_refused_by_content(fake, bot, immich, name, data):
    answer = await upload(fake, [(name, data, None)])
    assert_clean(answer)
    assert immich.uploads == []
    assert "refused" in text_of(answer)


async def test_oversize_file_is_refused_and_its_neighbour_still_uploads(fake, bot, immich):
    answer = await upload(fake, [("big.jpg", JPEG, 50 * 1024 * 1024), ("ok.png", PNG, None)])
    assert_clean(answer)
    assert "`big.jpg`: refused, too big" in text_of(answer)
    assert [u[0] for u in immich.uploads] == ["ok.png"]


async def test_many_files_at_once_each_get_one_answer_line(fake, bot, immich):
    files = [(f"../p{i}\x07.jpg", JPEG + bytes([i]), None) for i in range(10)]
    answer = await upload(fake, files)
    assert_clean(answer)
    assert len(immich.uploads) == 10
    assert sorted(u[0] for u in immich.uploads) == sorted(f"p{i}.jpg" for i in range(10))
    assert len(text_of(answer)) <= 2000  # one Discord message


async def test_file_name_with_markdown_is_escaped_in_the_reply(fake, bot, immich):
    answer = await upload(fake, [("**bold**`tick`||spoiler||.jpg", JPEG, None)])
    assert_clean(answer)
    text = text_of(answer)
    assert "`tick`" not in text  # a backtick in a name must not close the code span


@pytest.mark.parametrize(
    "description", ["@everyone look", "<@&900000000000000021> hi", "<@900000000000000041>", "@here"]
)
async def test_upload_description_with_mentions_does_not_ping(fake, bot, immich, description):
    answer = await upload(fake, [("a.jpg", JPEG, None)], description=description)
    assert_clean(answer)
    assert "@everyone" not in text_of(answer) and "@here" not in text_of(answer)


@pytest.mark.parametrize(
    "query",
    [
        "@everyone",
        "@here",
        "<@&900000000000000021>",
        "<@900000000000000041>",
        "**bold**",
        "||spoiler||",
        "`code`",
        "```block```",
        "[link](https://evil.example)",
        "a" * 500,
        "\u202eevil",
        "ali\x00ce",
    ],
)
async def test_person_search_with_hostile_text_is_harmless(fake, bot, query):
    answer = await command(fake, "person", [{"type": 3, "name": "name", "value": query}])
    assert_clean(answer)
    payload = answer["payload"]
    text = text_of(answer) + str(payload.get("embeds", ""))
    for raw in ("@everyone", "@here", "<@&9", "<@9", "**bold**", "||spoiler||"):
        assert raw not in text, (query, text)
    assert "[link](" not in text.replace("\\[", "")  # an escaped bracket renders no link
    assert len(text_of(answer)) <= 2000


async def test_refusal_lists_no_internal_detail(fake, bot, immich):
    answer = await upload(
        fake, [("a.jpg", JPEG, None)], roles=(fd.MEMBER_ROLE,), channel_id=fd.PHOTOS_CHANNEL
    )
    assert_clean(answer)
    assert immich.uploads == []
    assert str(fd.UPLOADER_ROLE) not in text_of(answer)
