"""The gallery layout (components v2), the byte budget of a message, and where links go: pure,
no I/O (issue 26)."""

from __future__ import annotations

import json
from dataclasses import replace

from sidecar.targets.base import AlbumRef, Batch, Delivery, PostRef
from sidecar.targets.discord.render.batch import Draft, drafts
from sidecar.targets.discord.render.fit import Part, fit
from sidecar.targets.discord.render.gallery import (
    Buttons,
    render_gallery,
    render_gallery_embeds,
    too_large_note,
)
from sidecar.targets.discord.render.message import (
    GALLERY_LIMIT,
    IS_COMPONENTS_V2,
    MAX_COMPONENTS,
    MESSAGE_BYTES,
    V2_TEXT_LIMIT,
    Media,
    Thumbnail,
)
from sidecar.targets.links import Links
from tests.fakes import discord_components as discord_rules
from tests.test_render import ALICE, BOB, EXTERNAL, make_asset, make_batch

MIB = 1024 * 1024
IMMICH = Links("immich", EXTERNAL)


def picture(asset_id: str, size: int = 64) -> Thumbnail:
    return Thumbnail(
        b"\xff\xd8\xff" + asset_id.encode() + bytes(max(0, size - 3 - len(asset_id))), "image/jpeg"
    )


def media_for(assets, size: int = 64) -> dict[str, Media]:
    return {a.id: Media(picture=picture(a.id, size)) for a in assets}


def one_part(draft: Draft) -> Part:
    return Part(draft.deliveries, draft.shown)


def only(batch: Batch) -> Draft:
    [draft] = drafts(batch, gallery=True)
    return draft


def test_a_batch_of_five_is_one_gallery_with_the_flag_and_buttons():
    assets = [make_asset(i, people=(ALICE, BOB) if i == 0 else (ALICE,)) for i in range(5)]
    batch = make_batch(assets, roles=(77,))
    draft = only(batch)
    message = render_gallery(
        batch, draft, one_part(draft), IMMICH, media_for(assets), Buttons(favourite=True)
    )
    assert message.flags == IS_COMPONENTS_V2 and message.is_v2
    payload = message.payload()
    assert "content" not in payload and "embeds" not in payload
    text, gallery, *rows = payload["components"]
    assert text["content"].splitlines()[0] == "<@&77> Alice: 5 new photos"
    assert (
        text["content"]
        .splitlines()[1]
        .startswith(f"**1** [Alice and Bob]({EXTERNAL}/photos/asset-0) · <t:")
    )
    assert "Lyon, France" in text["content"]
    assert [i["media"]["url"] for i in gallery["items"]] == [
        f"attachment://asset-{i}.jpg" for i in range(5)
    ]
    buttons = [b for row in rows for b in row["components"]]
    assert buttons[0] == {
        "type": 2,
        "style": 5,
        "label": "Open in Immich",
        "url": f"{EXTERNAL}/photos",
    }
    assert [b["label"] for b in buttons[1:]] == ["♥ 1", "♥ 2", "♥ 3", "♥ 4", "♥ 5"]
    assert [b["custom_id"] for b in buttons[1:]] == [f"immich:fav:asset-{i}" for i in range(5)]
    assert [len(r["components"]) for r in rows] == [5, 1]
    assert message.attachment_names == tuple(f"asset-{i}.jpg" for i in range(5))
    assert discord_rules.message_refusal(payload, list(message.attachment_names)) is None


def test_ten_pictures_with_every_button_stay_within_discord_s_limits():
    assets = [make_asset(i) for i in range(10)]
    batch = make_batch(assets)
    draft = only(batch)
    message = render_gallery(
        batch, draft, one_part(draft), IMMICH, media_for(assets), Buttons(favourite=True)
    )
    every = list(discord_rules.walk(list(message.components)))
    assert len(every) <= MAX_COMPONENTS
    assert len(message.components[1]["items"]) == GALLERY_LIMIT


def test_the_text_block_is_cut_to_discord_s_limit():
    long_name = replace(ALICE, name="A" * 900)
    assets = [make_asset(i, people=(long_name,), city="X" * 500) for i in range(10)]
    batch = make_batch(assets)
    draft = only(batch)
    message = render_gallery(batch, draft, one_part(draft), IMMICH, media_for(assets))
    assert len(message.components[0]["content"]) <= V2_TEXT_LIMIT


def test_a_video_plays_in_the_gallery_or_says_why_it_does_not():
    small, big = make_asset(1, kind="VIDEO"), make_asset(2, kind="VIDEO")
    batch = make_batch([small, big])
    media = {
        small.id: Media(picture(small.id), Thumbnail(b"\x00\x00\x00\x18ftypmp42", "video/mp4")),
        big.id: Media(picture(big.id), refused=too_large_note(212 * MIB, 8 * MIB)),
    }
    draft = only(batch)
    message = render_gallery(batch, draft, one_part(draft), IMMICH, media)
    assert message.attachment_names == ("asset-1.mp4", "asset-2.jpg")
    lines = message.components[0]["content"].splitlines()
    assert lines[1].startswith("**1** ▶ [Alice]")
    assert lines[2].startswith("**2** ▶ [Alice]")
    assert lines[2].endswith("too large to attach: 212 MB")
    alts = [i["description"] for i in message.components[1]["items"]]
    assert alts == ["▶ video: Alice", "▶ video (preview): Alice"]
    assert too_large_note(3_500_000, 8 * MIB) == "too large to attach: 3.3 MB"
    assert too_large_note(None, 8 * MIB) == "too large to attach: over 8 MB"


def test_files_over_ten_mib_split_into_messages_within_the_limit():
    """12 pictures of 2 MiB (24 MiB in all) become messages of at most 10 MiB each, in order;
    the first carries the words and mentions."""
    assets = [make_asset(i) for i in range(12)]
    batch = make_batch(assets, max_per_message=10, roles=(5,))
    media = media_for(assets, size=2 * MIB)
    first, second = drafts(batch, gallery=True)
    parts = fit(first, media) + fit(second, media)
    sizes = [sum(media[a.id].size for a in p.shown) for p in parts]
    assert all(size <= MESSAGE_BYTES for size in sizes)
    assert [len(p.shown) for p in parts] == [5, 5, 2]
    assert [d.asset.id for p in parts for d in p.deliveries] == [a.id for a in assets]
    assert [(p.number, p.count) for p in parts] == [(1, 2), (2, 2), (1, 1)]
    one = render_gallery(batch, first, parts[0], IMMICH, media)
    two = render_gallery(batch, first, parts[1], IMMICH, media)
    assert one.components[0]["content"].startswith("<@&5> Alice: 10 new photos (1/2)")
    assert two.components[0]["content"].startswith("Alice: 10 new photos (2/2)")
    assert two.allowed_mentions["roles"] == [] and one.allowed_mentions["roles"] == [5]
    assert one.size <= MESSAGE_BYTES and two.size <= MESSAGE_BYTES
    assert one.nonce != two.nonce


def test_a_summary_carries_every_delivery_and_shows_ten():
    assets = [make_asset(i) for i in range(30)]
    batch = make_batch(assets, summary_over=20)
    draft = only(batch)
    [part] = fit(draft, media_for(assets))
    assert len(part.deliveries) == 30 and len(part.shown) == GALLERY_LIMIT
    message = render_gallery(batch, draft, part, IMMICH, media_for(assets), Buttons(favourite=True))
    assert "Alice: 30 new photos" in message.components[0]["content"]
    assert "custom_id" not in json.dumps(message.payload())  # no ♥ for a burst


def test_a_memories_post_is_one_gallery_across_the_years():
    years = [make_asset(year) for year in (2021, 2022, 2023)]
    deliveries = tuple(
        Delivery(
            i + 1,
            "memories",
            "family",
            a,
            post=PostRef("memories", "memories", "2026-12-01", "all", "On this day", "https://x/m"),
        )
        for i, a in enumerate(years)
    )
    batch = Batch("memories", "family", deliveries)
    draft = only(batch)
    message = render_gallery(
        batch, draft, one_part(draft), Links("app", "https://x"), media_for(years)
    )
    assert message.components[0]["content"] == "On this day"
    assert len(message.components[1]["items"]) == 3
    assert message.allowed_mentions["roles"] == [] and message.delivery_ids == (1, 2, 3)


def test_where_links_go_for_each_style():
    asset_id, album_id = "a1", "al1"
    assert Links("immich", "https://p/").asset(asset_id) == "https://p/photos/a1"
    assert (
        Links("immich", "https://p").asset(asset_id, album_id) == "https://p/albums/al1/photos/a1"
    )
    assert Links("app", "https://p").asset(asset_id) == "https://my.immich.app/photos/a1"
    assert (
        Links("app", "https://p").rebased("https://p/people/x") == "https://my.immich.app/people/x"
    )
    assert Links("none", "https://p").asset(asset_id) is None
    shared = Links("shared", "https://p", "https://p/share/KEY")
    assert shared.asset(asset_id) == shared.album(album_id) == shared.everything()
    assert shared.rebased("https://p/people/x") == "https://p/share/KEY"


def test_links_none_leaves_out_links_and_the_open_button():
    asset = make_asset(1)
    batch = make_batch([asset])
    draft = only(batch)
    message = render_gallery(
        batch, draft, one_part(draft), Links("none", EXTERNAL), media_for([asset])
    )
    assert [c["type"] for c in message.components] == [10, 12]
    assert "](" not in message.components[0]["content"]


def test_an_album_message_opens_the_album():
    assets = [make_asset(i) for i in range(3)]
    album = AlbumRef("al-1", "Holiday")
    batch = replace(
        make_batch(assets),
        deliveries=tuple(replace(d, album=album) for d in make_batch(assets).deliveries),
    )
    draft = only(batch)
    message = render_gallery(batch, draft, one_part(draft), IMMICH, media_for(assets))
    assert message.link == f"{EXTERNAL}/albums/al-1"
    assert "in **Holiday**" in message.components[0]["content"]


def test_the_embeds_form_of_a_gallery_is_one_message_of_cards_of_four():
    """For a webhook that takes no components: 5 pictures as 5 embeds, the first 4 sharing one
    url (one card of 4 pictures) and the fifth another."""
    assets = [make_asset(i) for i in range(5)]
    batch = make_batch(assets)
    draft = only(batch)
    message = render_gallery_embeds(batch, draft, one_part(draft), IMMICH, media_for(assets))
    assert not message.is_v2
    urls = [e["url"] for e in message.embeds]
    assert urls == [f"{EXTERNAL}/photos#1"] * 4 + [f"{EXTERNAL}/photos#2"]
    assert [e["image"]["url"] for e in message.embeds] == [
        f"attachment://asset-{i}.jpg" for i in range(5)
    ]
    assert message.embeds[0]["title"] == "Open in Immich"
    assert "**5**" in message.embeds[0]["description"]
    assert message.content == "Alice: 5 new photos"
