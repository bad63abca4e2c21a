"""People links end to end: the whole sidecar in-process against the fake Immich and the fake
Discord on 127.0.0.1. A claim approved by an approver's click, then spotted DMs (muted,
unclaimed, closed by one member), member mentions in channel posts, and the Favourite button
after a restart."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar.app import Sidecar
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich, asset_picture
from tests.test_discord_commands import final_answer, text_of
from tests.test_e2e_discord import wait_until

pytestmark = pytest.mark.e2e
APPROVERS = fd.MEMBER_ROLE  # "family": may approve claims and mark favourites
SETTLE = 2.5  # seconds: more polls and dispatch rounds, in which nothing more may arrive


class World:
    def __init__(self, immich: FakeImmich, discord: fd.FakeDiscord, tmp: Path) -> None:
        self.immich, self.discord, self.tmp = immich, discord, tmp
        self.alice = immich.add_person("Alice")
        self.bob = immich.add_person("Bob")
        self.carol = immich.add_person("Carol")
        self.dave = immich.add_person("Dave")  # nobody's
        self.alice_user = discord.add_user("alice")
        self.bob_user = discord.add_user("bob", dms_closed=True)
        self.carol_user = discord.add_user("carol2")
        self.approver = discord.add_user("grandma")
        self.config = tmp / "config.yaml"
        write_config(
            self.config,
            immich_url=immich.url,
            state=tmp / "state.db",
            metrics_port=free_port(),
            targets=textwrap.dedent(f"""\
                photos: {{channel_id: "{fd.PHOTOS_CHANNEL}"}}
                spotted: {{discord_dm: members}}
                """),
            rules=textwrap.dedent("""\
                - name: spotted
                  people: {any: [Alice, Bob, Carol]}
                  targets: [spotted]
                - name: family
                  people: {any: [Alice, Bob, Carol, Dave]}
                  targets: [photos]
                  mention_members: true
                """),
            extra=textwrap.dedent(f"""\
                discord:
                  token: ${{DISCORD_TOKEN}}
                  members:
                    bob: "{self.bob_user}"
                    Carol: "{self.carol_user}"
                  members_approvers: ["{APPROVERS}"]
                  members_channel: "{fd.UPLOADS_CHANNEL}"
                  favourite_roles: [family]
                """),
        )

    def upload(self, *people: str) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), people=people)

    def dms(self, user: int, asset: str | None = None) -> list[fd.RecordedMessage]:
        found = self.discord.dms_to(user)
        return [m for m in found if asset is None or asset in json.dumps(m.payload)]

    def post_of(self, asset: str) -> fd.RecordedMessage | None:
        posts = self.discord.messages_in(fd.PHOTOS_CHANNEL)
        return next((m for m in posts if asset in json.dumps(m.payload)), None)

    async def command(self, command: str, user: int, **options: str) -> str:
        """Run ``/immich command`` as ``user``; the text of its (ephemeral) answer."""
        token = await self.discord.interact(
            [
                {
                    "type": 1,
                    "name": command,
                    "options": [{"type": 3, "name": k, "value": v} for k, v in options.items()],
                }
            ],
            user_id=user,
            roles=(APPROVERS,) if user == self.approver else (),
        )
        return await self.answer(token)

    async def answer(self, token: str) -> str:
        await wait_until(
            lambda: final_answer(self.discord, token) is not None, f"the answer to {token}"
        )
        return text_of(final_answer(self.discord, token) or {"payload": {}})


@pytest.fixture
async def world(tmp_path, monkeypatch) -> AsyncIterator[World]:
    discord = fd.FakeDiscord()
    await discord.start()
    monkeypatch.setenv("DISCORD_TOKEN", fd.TOKEN)
    with discord.patched():
        async with FakeImmich() as immich:
            monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
            yield World(immich, discord, tmp_path)
    await discord.stop()


async def running(world: World) -> Sidecar:
    sidecar = Sidecar(world.config, stdout=io.StringIO())
    await sidecar.start()
    return sidecar


async def test_claim_approved_by_a_click_then_dms_until_muted_or_unclaimed(world) -> None:
    sidecar = await running(world)
    try:
        said = await world.command("claim", world.alice_user, name=world.alice)
        assert "waits for an approver" in said
        await wait_until(lambda: world.discord.messages_in(fd.UPLOADS_CHANNEL), "the request")
        [request] = world.discord.messages_in(fd.UPLOADS_CHANNEL)
        assert request.payload["allowed_mentions"]["parse"] == []
        approve, deny = world.discord.custom_ids(request.id)
        assert "approve" in approve and "deny" in deny
        # Someone without an approver role is refused; the claim still waits.
        refused = await world.discord.click(request.id, approve, user_id=world.carol_user)
        assert "only members with an approver role" in await world.answer(refused)
        assert world.discord.custom_ids(request.id) == [approve, deny]
        clicked = await world.discord.click(
            request.id, approve, user_id=world.approver, roles=(APPROVERS,)
        )
        await world.discord.wait_for(lambda: world.discord.responses_for(clicked))
        assert "approved by" in world.discord.message_json[request.id]["content"]
        assert world.discord.custom_ids(request.id) == []  # decided: no buttons any more

        first = world.upload(world.alice)
        await wait_until(lambda: world.dms(world.alice_user, first), "the spotted DM")
        await asyncio.sleep(SETTLE)
        [dm] = world.dms(world.alice_user, first)
        [(name, data)] = dm.files.values()
        assert data == asset_picture(first, "preview")
        assert dm.shown == (name,)  # a gallery, shown in the DM

        assert "off" in await world.command("dm", world.alice_user, mode="off")
        muted = world.upload(world.alice)
        await wait_until(lambda: world.post_of(muted), "the channel post of the next photo")
        await asyncio.sleep(SETTLE)
        assert world.dms(world.alice_user, muted) == []

        await world.command("dm", world.alice_user, mode="on")
        assert "removed" in await world.command("unclaim", world.alice_user)
        gone = world.upload(world.alice)
        await wait_until(lambda: world.post_of(gone), "the channel post after unclaim")
        await asyncio.sleep(SETTLE)
        assert world.dms(world.alice_user, gone) == []
        assert len(world.dms(world.alice_user)) == 1
    finally:
        await sidecar.stop()


async def test_closed_dms_stop_one_member_only_and_mentions_ping_exactly_the_linked(
    world, caplog
) -> None:
    caplog.set_level(logging.INFO)
    sidecar = await running(world)
    try:
        both = world.upload(world.bob, world.carol, world.dave)
        await wait_until(lambda: world.dms(world.carol_user, both), "Carol's DM")
        await wait_until(lambda: world.post_of(both), "the channel post")
        again = world.upload(world.bob)
        await wait_until(lambda: world.post_of(again), "the next channel post")
        await asyncio.sleep(SETTLE)
        listing = await world.command("members", world.approver)
    finally:
        await sidecar.stop()
    assert world.discord.dm_attempts(world.bob_user) == 1  # once, not in a loop
    assert world.dms(world.bob_user) == []
    closed = [r for r in caplog.records if "spotted DMs to Discord member" in r.getMessage()]
    assert len(closed) == 1 and str(world.bob_user) in closed[0].getMessage()
    assert "50007" in listing and "DMs fail" in listing
    post = world.post_of(both)
    assert post is not None
    allowed = post.payload["allowed_mentions"]
    assert allowed["parse"] == [] and not allowed.get("roles")  # no role, no @everyone
    assert sorted(int(u) for u in allowed["users"]) == sorted([world.bob_user, world.carol_user])
    content = post.payload["components"][0]["content"]  # the gallery's text block
    assert f"<@{world.bob_user}>" in content and f"<@{world.carol_user}>" in content
    assert content.count("<@") == 2  # Dave has no link; Alice is not in it


async def test_the_favourite_button_works_after_a_restart(world) -> None:
    sidecar = await running(world)
    try:
        photo = world.upload(world.dave)
        await wait_until(lambda: world.post_of(photo), "the channel post")
    finally:
        await sidecar.stop()
    post = world.post_of(photo)
    assert post is not None
    *_, row = world.discord.message_json[post.id]["components"]  # the gallery's buttons
    link, heart = row["components"]
    assert link["url"] == f"https://photos.example.test/photos/{photo}" and link["style"] == 5
    assert heart["label"] == "♥ Favourite"
    sidecar = await running(world)  # nothing of the first run's view is left in memory
    try:
        outsider = await world.discord.click(post.id, heart["custom_id"], user_id=world.alice_user)
        assert "do not have a role" in await world.answer(outsider)
        assert not world.immich.is_favourite(photo)
        clicked = await world.discord.click(
            post.id, heart["custom_id"], user_id=world.approver, roles=(APPROVERS,)
        )
        said = await world.answer(clicked)
    finally:
        await sidecar.stop()
    assert "favourite" in said
    assert world.immich.is_favourite(photo)
    [callback] = world.discord.responses_for(clicked)
    assert callback["payload"]["data"]["flags"] & 64  # ephemeral


async def test_open_claims_link_at_once_and_autocomplete_offers_only_claimable_people(
    world,
) -> None:
    world.immich.add_person("Alicia", hidden=True)
    text = world.config.read_text()
    world.config.write_text(
        text.replace("  favourite_roles:", "  claims: open\n  favourite_roles:")
    )
    sidecar = await running(world)
    try:
        offered = await autocomplete(world, "Ali")
        assert offered == [{"name": "Alice", "value": world.alice}]  # not the hidden Alicia
        assert await autocomplete(world, "Carol") == []  # linked in the config
        assert "no link" in await world.command("members", world.alice_user)
        said = await world.command("claim", world.alice_user, name="alice")  # typed, any case
        assert "You are now linked to **Alice**" in said
        assert world.discord.messages_in(fd.UPLOADS_CHANNEL) == []  # no approval asked
        assert await autocomplete(world, "Ali") == []  # claimed now
        own = await world.command("members", world.alice_user)
        assert "Alice" in own and "Carol" not in own  # others see their own link only
        photo = world.upload(world.alice)
        await wait_until(lambda: world.dms(world.alice_user, photo), "the spotted DM")
        world.immich.merge_people(world.alice, world.dave)  # Alice is gone from Immich
        listing = await world.command("members", world.alice_user)
    finally:
        await sidecar.stop()
    assert "no longer in Immich (deleted, or merged into another person)" in listing


async def autocomplete(world: World, typed: str) -> list[dict[str, Any]]:
    token = await world.discord.interact(
        [
            {
                "type": 1,
                "name": "claim",
                "options": [{"type": 3, "name": "name", "value": typed, "focused": True}],
            }
        ],
        autocomplete=True,
        user_id=world.alice_user,
    )
    await wait_until(lambda: bool(world.discord.responses_for(token)), "the autocomplete answer")
    [answer] = world.discord.responses_for(token)
    assert answer["payload"]["type"] == 8  # APPLICATION_COMMAND_AUTOCOMPLETE_RESULT
    choices: list[dict[str, Any]] = answer["payload"]["data"]["choices"]
    return choices
