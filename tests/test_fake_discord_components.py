"""The fake Discord refuses and shows messages as Discord does (issue 26): components v2 (the
flag, no content or embeds, at most 40 components and 4,000 characters of text, galleries of 1
to 10, attachments shown only where referenced), webhooks' ``with_components``, and 413 for
files over the 10 MiB upload limit. Pinned with the real discord.py client where a bot sends,
and with plain HTTP where a webhook does (as the sidecar's webhook target posts)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import discord
import httpx
import pytest

from tests.fakes import discord_components as rules
from tests.fakes import fake_discord as fd
from tests.test_fake_discord_messages import Listener, connected

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(64))
MP4 = b"\x00\x00\x00\x18ftypmp42" + bytes(100)


class _Sent(discord.ui.LayoutView):
    pass


def gallery_view(names: list[str], text: str = "3 new photos") -> discord.ui.LayoutView:
    view = _Sent(timeout=None)
    view.add_item(discord.ui.TextDisplay[Any](text))
    gallery = discord.ui.MediaGallery[Any]()
    for name in names:
        gallery.add_item(media=f"attachment://{name}")
    view.add_item(gallery)
    row = discord.ui.ActionRow[Any]()
    row.add_item(discord.ui.Button[Any](label="Open", url="https://photos.example.test/photos"))
    view.add_item(row)
    return view


@pytest.fixture
async def bot(fake: fd.FakeDiscord) -> AsyncIterator[Listener]:
    client = Listener(content=False, messages=False)
    runner = await connected(client)
    yield client
    await client.close()
    runner.cancel()


async def photos(bot: Listener) -> discord.TextChannel:
    channel = bot.get_channel(fd.PHOTOS_CHANNEL)
    assert isinstance(channel, discord.TextChannel)
    return channel


async def test_a_v2_gallery_from_the_bot_shows_only_referenced_files(fake, bot):
    channel = await photos(bot)
    files = [
        discord.File(io.BytesIO(JPEG), filename="a.jpg"),
        discord.File(io.BytesIO(MP4), filename="b.mp4"),
        discord.File(io.BytesIO(JPEG), filename="hidden.jpg"),
    ]
    await channel.send(view=gallery_view(["a.jpg", "b.mp4"]), files=files)
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.payload["flags"] & rules.IS_COMPONENTS_V2
    assert "content" not in message.payload or not message.payload["content"]
    assert message.shown == ("a.jpg", "b.mp4")
    assert message.file_types() == {
        "a.jpg": "image/jpeg",
        "b.mp4": "video/mp4",
        "hidden.jpg": "image/jpeg",
    }
    kept = fake.message_json[message.id]
    assert [c["type"] for c in kept["components"]] == [10, 12, 1]
    assert {a["content_type"] for a in kept["attachments"]} == {"image/jpeg", "video/mp4"}


async def test_v2_limits_are_refused_with_discord_s_400(fake, bot):
    channel = await photos(bot)
    over_text = gallery_view(["a.jpg"], text="x" * (rules.MAX_V2_TEXT + 1))
    with pytest.raises(discord.HTTPException) as text_error:
        await channel.send(view=over_text, files=[discord.File(io.BytesIO(JPEG), "a.jpg")])
    assert text_error.value.status == 400 and text_error.value.code == 50035
    with pytest.raises(discord.HTTPException) as missing:
        await channel.send(view=gallery_view(["not-uploaded.jpg"]))
    assert "not-uploaded.jpg" in json.dumps(fake.refusals[-1][1])
    many = _Sent(timeout=None)
    rows = []
    for index in range(7):  # rows of 5 buttons count 6 each, as Discord counts them
        row = discord.ui.ActionRow[Any]()
        for button in range(5):
            row.add_item(
                discord.ui.Button[Any](label="x", url=f"https://example.test/{index}/{button}")
            )
        rows.append(row)
    for row in rows[:6]:
        many.add_item(row)
    with pytest.raises(ValueError, match="40"):  # discord.py refuses the 42nd as Discord would
        many.add_item(rows[6])
    assert missing.value.status == 400
    assert fake.messages_in(fd.PHOTOS_CHANNEL) == []


def test_the_rules_count_nested_components_and_gallery_sizes():
    """What discord.py lets through is checked by the fake all the same."""
    rows = [{"type": 1, "components": [{"type": 2, "style": 5, "url": "u", "label": "x"}] * 5}] * 7
    payload = {"flags": rules.IS_COMPONENTS_V2, "components": rows}
    assert rules.message_refusal(payload, []) is not None  # 7 rows + 35 buttons = 42
    assert rules.message_refusal({**payload, "components": rows[:6]}, []) is None  # 36
    item = {"media": {"url": "attachment://a.jpg"}}
    gallery: dict[str, Any] = {"type": 12, "items": [item] * 11}
    assert rules.message_refusal({**payload, "components": [gallery]}, ["a.jpg"]) is not None
    legacy = {**payload, "components": [{**gallery, "items": [item] * 2}], "content": "x"}
    assert rules.message_refusal(legacy, ["a.jpg"]) is not None
    without_flag = {"components": [{"type": 10, "content": "hi"}]}
    assert rules.message_refusal(without_flag, []) is not None


async def post_webhook(
    url: str, payload: dict[str, Any], files: list[tuple[str, bytes]], **params: str
) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(
            url,
            params={"wait": "true", **params},
            data={"payload_json": json.dumps(payload)},
            files=[
                (f"files[{i}]", (n, d, "application/octet-stream"))
                for i, (n, d) in enumerate(files)
            ],
        )


def v2_payload(names: list[str], *, buttons: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {"type": 10, "content": "2 new photos"},
        {"type": 12, "items": [{"media": {"url": f"attachment://{n}"}} for n in names]},
    ]
    if buttons:
        components.append({"type": 1, "components": buttons})
    return {
        "flags": rules.IS_COMPONENTS_V2,
        "components": components,
        "attachments": [{"id": i, "filename": n} for i, n in enumerate(names)],
    }


async def test_a_webhook_takes_components_only_with_with_components(fake):
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    files = [("a.jpg", JPEG), ("b.jpg", JPEG)]
    link = {"type": 2, "style": 5, "label": "Open", "url": "https://photos.example.test/"}
    ignored = await post_webhook(url, v2_payload(["a.jpg", "b.jpg"]), files)
    assert ignored.status_code == 400 and ignored.json()["code"] == 50006  # an empty message
    posted = await post_webhook(
        url, v2_payload(["a.jpg", "b.jpg"], buttons=[link]), files, with_components="true"
    )
    assert posted.status_code == 200, posted.text
    favourite = {"type": 2, "style": 2, "label": "♥", "custom_id": "immich:fav:x"}
    interactive = await post_webhook(
        url, v2_payload(["a.jpg"], buttons=[favourite]), files[:1], with_components="true"
    )
    assert interactive.status_code == 400
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.shown == ("a.jpg", "b.jpg")


async def test_a_webhook_that_refuses_components_answers_400_even_with_the_parameter(fake):
    url = fake.add_webhook(fd.PHOTOS_CHANNEL, components=False)
    refused = await post_webhook(
        url, v2_payload(["a.jpg"]), [("a.jpg", JPEG)], with_components="true"
    )
    assert refused.status_code == 400
    assert "components" in refused.json()["errors"]
    embeds = {
        "embeds": [{"url": "https://photos.example.test/", "image": {"url": "attachment://a.jpg"}}]
    }
    assert (await post_webhook(url, embeds, [("a.jpg", JPEG)])).status_code == 200


async def test_files_over_the_upload_limit_answer_413_and_post_nothing(fake, bot):
    url = fake.add_webhook(fd.PHOTOS_CHANNEL)
    half = bytes(rules.UPLOAD_LIMIT // 2)
    over = await post_webhook(url, {"content": "big"}, [("a.mp4", half), ("b.mp4", half + b"x")])
    assert (over.status_code, over.json()) == (
        413,
        {"message": "Request entity too large", "code": 40005},
    )
    at_limit = await post_webhook(url, {"content": "fits"}, [("a.mp4", half), ("b.mp4", half)])
    assert at_limit.status_code == 200
    channel = await photos(bot)
    with pytest.raises(discord.HTTPException) as error:
        await channel.send("big", file=discord.File(io.BytesIO(half + half + b"x"), "c.mp4"))
    assert error.value.status == 413
    [message] = fake.messages_in(fd.PHOTOS_CHANNEL)
    assert message.size == rules.UPLOAD_LIMIT
