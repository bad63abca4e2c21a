"""Rendering a batch into Discord messages: pure, no I/O."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sidecar.config.model import Batching
from sidecar.immich.models import Asset, PersonRef
from sidecar.targets.base import Batch, Delivery, PostRef
from sidecar.targets.console import console_line
from sidecar.targets.discord.render.batch import assets_to_picture, render_batch
from sidecar.targets.discord.render.message import Thumbnail
from sidecar.targets.discord.render.text import describe_people
from sidecar.targets.discord.safe import safe_text
from sidecar.targets.http_webhook import asset_entry

EXTERNAL = "https://photos.example.org"
ALICE = PersonRef("p-alice", "Alice")
BOB = PersonRef("p-bob", "Bob")


def make_asset(n: int, *, people=(ALICE,), kind="IMAGE", city="Lyon", country="France") -> Asset:
    return Asset(
        id=f"asset-{n}",
        type=kind,
        created_at=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
        taken_at=datetime(2024, 5, 1, 10, 30, tzinfo=UTC),
        original_file_name=f"IMG_{n}.jpg",
        visibility="timeline",
        is_trashed=False,
        people=tuple(people),
        city=city,
        country=country,
    )


def make_batch(assets, *, roles=(), max_per_message=10, summary_over=20, rule="family") -> Batch:
    return Batch(
        rule=rule,
        target="family-channel",
        deliveries=tuple(Delivery(i + 1, rule, "family-channel", a) for i, a in enumerate(assets)),
        mention_roles=tuple(roles),
        batching=Batching(max_per_message=max_per_message, summary_over=summary_over),
    )


def pictures(assets) -> dict[str, Thumbnail]:
    return {a.id: Thumbnail(b"\xff\xd8\xff" + a.id.encode(), "image/jpeg") for a in assets}


def test_one_asset_gives_one_embed_with_attached_picture_and_link():
    asset = make_asset(1, people=(ALICE, BOB))
    [message] = render_batch(make_batch([asset]), EXTERNAL, pictures([asset]))
    [embed] = message.embeds
    assert embed["url"] == "https://photos.example.org/photos/asset-1"
    assert embed["image"] == {"url": "attachment://asset-1.jpg"}
    assert message.attachment_names == ("asset-1.jpg",)
    assert message.files[0].data == b"\xff\xd8\xffasset-1"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Who"] == "Alice and Bob"
    assert fields["Where"] == "Lyon, France"
    assert fields["Rule"] == "family"
    assert fields["Taken"] == f"<t:{int(datetime(2024, 5, 1, 10, 30, tzinfo=UTC).timestamp())}:f>"
    assert "photo" in embed["title"]
    assert message.delivery_ids == (1,)


def test_video_says_it_is_a_video():
    asset = make_asset(1, kind="VIDEO")
    [message] = render_batch(make_batch([asset]), EXTERNAL, pictures([asset]))
    assert "video" in message.embeds[0]["title"].lower()
    assert "video" in message.embeds[0]["description"].lower()


def test_people_descriptions():
    assert describe_people(make_asset(1, people=())) == "nobody recognised"
    assert describe_people(make_asset(1, people=(PersonRef("x", ""),))) == "someone"
    assert describe_people(make_asset(1, people=(ALICE, PersonRef("x", "")))) == (
        "Alice and 1 other person"
    )
    assert describe_people(make_asset(1, people=(ALICE, BOB, PersonRef("c", "Carol")))) == (
        "Alice, Bob, and Carol"
    )


def test_people_are_listed_by_name_not_in_immichs_face_order():
    carol = PersonRef("c", "Carol")
    unnamed = PersonRef("x", "")
    asset = make_asset(1, people=(carol, unnamed, BOB, PersonRef("d", "dave"), ALICE))
    assert describe_people(asset) == "Alice, Bob, Carol, dave, and 1 other person"
    [message] = render_batch(make_batch([asset]), EXTERNAL, {})
    assert message.embeds[0]["title"] == "New photo of Alice, Bob, Carol, dave, and 1 other person"


def test_asset_without_picture_has_no_image_and_no_file():
    asset = make_asset(1)
    [message] = render_batch(make_batch([asset]), EXTERNAL, {})
    assert "image" not in message.embeds[0]
    assert message.files == ()


def test_no_immich_url_or_key_in_the_payload():
    assets = [make_asset(i) for i in range(3)]
    for message in render_batch(make_batch(assets), "http://immich:2283", pictures(assets)):
        text = json.dumps(message.payload())
        assert "/api/" not in text
        assert "api-key" not in text.lower()
        for embed in message.embeds:
            assert embed["image"]["url"].startswith("attachment://")


def test_batches_split_at_max_per_message_and_never_exceed_ten_embeds():
    assets = [make_asset(i) for i in range(7)]
    messages = render_batch(make_batch(assets, max_per_message=3), EXTERNAL, pictures(assets))
    assert [len(m.embeds) for m in messages] == [3, 3, 1]
    assert [m.delivery_ids for m in messages] == [(1, 2, 3), (4, 5, 6), (7,)]

    many = [make_asset(i) for i in range(15)]
    messages = render_batch(make_batch(many, max_per_message=50), EXTERNAL, pictures(many))
    assert [len(m.embeds) for m in messages] == [10, 5]


def test_summary_above_threshold_with_four_previews_and_common_people():
    assets = [make_asset(i, people=(ALICE, BOB)) for i in range(42)]
    batch = make_batch(assets, summary_over=20)
    assert [a.id for a in assets_to_picture(batch)] == [f"asset-{i}" for i in range(4)]
    [message] = render_batch(batch, EXTERNAL, pictures(assets[:4]))
    assert "Alice and Bob: 42 new photos" in message.content
    assert len(message.files) == 4
    assert len(message.embeds) == 4
    assert {e["url"] for e in message.embeds} == {f"{EXTERNAL}/photos"}
    assert message.delivery_ids == tuple(range(1, 43))


def test_summary_without_common_people_names_the_rule():
    assets = [make_asset(i, people=(ALICE,) if i % 2 else (BOB,)) for i in range(30)]
    assets.append(make_asset(99, kind="VIDEO", people=()))
    [message] = render_batch(make_batch(assets, rule="garden"), EXTERNAL, {})
    assert "**garden**: 31 new photos and videos" in message.content
    assert message.files == ()


def test_mentions_only_configured_roles_on_every_message():
    assets = [make_asset(i) for i in range(5)]
    messages = render_batch(make_batch(assets, roles=(111, 222), max_per_message=2), EXTERNAL, {})
    assert len(messages) == 3
    for message in messages:
        assert message.allowed_mentions == {
            "parse": [],
            "roles": [111, 222],
            "users": [],
            "replied_user": False,
        }
        assert message.content.startswith("<@&111> <@&222> ")


def test_hostile_names_cannot_ping_or_format():
    evil = PersonRef("p-evil", "@everyone <@&1> **bold**")
    asset = make_asset(1, people=(evil,), city="<#123>")
    [message] = render_batch(make_batch([asset]), EXTERNAL, {})
    text = json.dumps(message.payload(), ensure_ascii=False)
    assert "@everyone" not in text
    assert "<@&1>" not in text
    assert "<#123>" not in text
    assert "**bold**" not in text
    assert message.allowed_mentions["parse"] == []


def test_nonce_is_deterministic_and_differs_per_message():
    assets = [make_asset(i) for i in range(4)]
    first = render_batch(make_batch(assets, max_per_message=2), EXTERNAL, {})
    again = render_batch(make_batch(assets, max_per_message=2), EXTERNAL, pictures(assets))
    assert [m.nonce for m in first] == [m.nonce for m in again]
    assert first[0].nonce != first[1].nonce
    assert all(len(m.nonce) <= 25 for m in first)


@given(st.text(max_size=200))
def test_safe_text_never_leaves_a_live_mention(text):
    out = safe_text(text)
    assert "@everyone" not in out
    assert "@here" not in out
    assert "<@" not in out
    assert "<#" not in out


def test_a_scheduled_post_says_its_headline_once() -> None:
    """Discord shows a message's content above its embeds: the headline in both read twice."""
    headline = "📅 On this day: 1 year ago (2025) and 3 years ago (2023): 3 photos"
    post = PostRef("memories", "memories", "2026-12-01", "years", headline, f"{EXTERNAL}/memory")
    assets = [make_asset(n) for n in range(3)]
    batch = replace(
        make_batch(assets),
        deliveries=tuple(
            Delivery(n + 1, "memories", "family-channel", a, post=post)
            for n, a in enumerate(assets)
        ),
    )
    (message,) = render_batch(batch, EXTERNAL, pictures(assets))
    assert message.content == safe_text(headline)
    shown = json.dumps([message.content, *message.embeds], ensure_ascii=False)
    assert shown.count("On this day") == 1
    assert message.embeds[0]["url"] == f"{EXTERNAL}/memory"  # the title still links to Immich
    assert [e["image"]["url"] for e in message.embeds] == [
        f"attachment://asset-{n}.jpg" for n in range(3)
    ]


def test_every_target_kind_lists_people_in_the_same_order() -> None:
    """Immich 3.1.0 listed ["Bob", "Alice"] (its face order); Discord sorted them and the
    console and JSON targets did not."""
    asset = make_asset(1, people=(BOB, PersonRef("p-x", ""), PersonRef("p-al", "alice"), ALICE))
    delivery = Delivery(1, "family", "t", asset)
    console = json.loads(console_line(delivery, EXTERNAL))["people"]
    webhook = asset_entry(delivery, EXTERNAL)["people"]
    assert console == webhook == ["Alice", "alice", "Bob"]
    assert describe_people(asset) == "Alice, alice, Bob, and 1 other person"
