"""Claims across Immich accounts (issue 28 item 2), the whole sidecar in-process against the
fake Immich (Dad and Mum, each with their own "Grandma") and the fake Discord: the claim list
shows every account's people (the account where a name repeats), a member claims one person
per account, each claim is approved as today, a photo in either account DMs her once, and a
person merged in Mum's account breaks that link only."""

from __future__ import annotations

import asyncio
import io
import json
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar.app import Sidecar
from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.test_discord_commands import final_answer, text_of
from tests.test_e2e_discord import wait_until

pytestmark = pytest.mark.e2e
APPROVERS = fd.MEMBER_ROLE
SETTLE = 2.5  # seconds: more polls and dispatch rounds, in which nothing more may arrive


class Home:
    def __init__(self, immich: FakeImmich, discord: fd.FakeDiscord, tmp: Path) -> None:
        self.immich, self.discord = immich, discord
        self.dad = immich.add_user("Dad", api_key="dad-key")
        self.mum = immich.add_user("Mum", api_key="mum-key")
        self.dads_grandma = immich.add_person("Grandma", owner=self.dad)
        self.mums_grandma = immich.add_person("Grandma", owner=self.mum)
        self.mums_rose = immich.add_person("Rose", owner=self.mum)
        self.rose = discord.add_user("rose")  # Grandma on Discord
        self.approver = discord.add_user("leo")
        self.config = tmp / "config.yaml"
        write_config(
            self.config,
            immich_url=immich.url,
            state=tmp / "state.db",
            metrics_port=free_port(),
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
            targets="spotted: {discord_dm: members}",
            rules="- name: spotted\n  targets: [spotted]\n",
            extra=textwrap.dedent(f"""\
                discord:
                  token: ${{DISCORD_TOKEN}}
                  members_approvers: ["{APPROVERS}"]
                  members_channel: "{fd.UPLOADS_CHANNEL}"
                """),
        )

    def upload(self, owner: str, *people: str) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), owner=owner, people=people)

    def dms(self, asset: str) -> int:
        return sum(asset in json.dumps(m.payload) for m in self.discord.dms_to(self.rose))

    async def command(self, sub: str, user: int, **options: str) -> str:
        token = await self.discord.interact(
            [{"name": sub, "options": [{"name": k, "value": v} for k, v in options.items()]}],
            user_id=user,
            roles=(APPROVERS,) if user == self.approver else (),
        )
        return await self.answer(token)

    async def answer(self, token: str) -> str:
        await wait_until(
            lambda: final_answer(self.discord, token) is not None, f"the answer to {token}"
        )
        return text_of(final_answer(self.discord, token) or {"payload": {}})

    async def choices(self, typed: str) -> list[dict[str, Any]]:
        token = await self.discord.interact(
            [{"name": "claim", "options": [{"name": "name", "value": typed, "focused": True}]}],
            autocomplete=True,
            user_id=self.rose,
        )
        await wait_until(lambda: bool(self.discord.responses_for(token)), "the suggestions")
        [answer] = self.discord.responses_for(token)
        return list(answer["payload"]["data"]["choices"])

    async def approve(self, person: str) -> str:
        """Click Approve under the request for ``person``; the request's words after."""
        requests = self.discord.messages_in(fd.UPLOADS_CHANNEL)
        [request] = [r for r in requests if any(person in c for c in self.discord.custom_ids(r.id))]
        approve, _deny = self.discord.custom_ids(request.id)
        clicked = await self.discord.click(
            request.id, approve, user_id=self.approver, roles=(APPROVERS,)
        )
        await self.discord.wait_for(lambda: self.discord.responses_for(clicked))
        return str(self.discord.message_json[request.id]["content"])


@pytest.fixture
async def home(tmp_path, monkeypatch) -> AsyncIterator[Home]:
    discord = fd.FakeDiscord()
    await discord.start()
    monkeypatch.setenv("DISCORD_TOKEN", fd.TOKEN)
    monkeypatch.setenv("DAD_KEY", "dad-key")
    monkeypatch.setenv("MUM_KEY", "mum-key")
    with discord.patched():
        async with FakeImmich(version=(3, 1, 0)) as immich:
            yield Home(immich, discord, tmp_path)
    await discord.stop()


async def test_one_claim_per_account_and_a_merge_in_one_breaks_only_that_one(home) -> None:
    sidecar = Sidecar(home.config, stdout=io.StringIO())
    await sidecar.start()
    try:
        assert await home.choices("Grandma") == [
            {"name": "Grandma (dad)", "value": home.dads_grandma},
            {"name": "Grandma (mum)", "value": home.mums_grandma},
        ]
        assert await home.choices("Rose") == [{"name": "Rose", "value": home.mums_rose}]
        typed = await home.command("claim", home.rose, name="grandma")
        assert "Several people are called grandma" in typed and "in dad" in typed

        said = await home.command("claim", home.rose, name=home.mums_grandma)
        assert "**Grandma** (mum)" in said and "waits for an approver" in said
        await wait_until(lambda: home.discord.messages_in(fd.UPLOADS_CHANNEL), "the request")
        assert (
            "claims to be **Grandma** (mum)"
            in home.discord.messages_in(fd.UPLOADS_CHANNEL)[0].payload["content"]
        )
        assert "approved by" in await home.approve(home.mums_grandma)
        await home.command("claim", home.rose, name=home.dads_grandma)
        assert "approved by" in await home.approve(home.dads_grandma)
        # A second person in an account she is linked in already is refused.
        again = await home.command("claim", home.rose, name=home.mums_rose)
        assert "linked to someone else in account mum already" in again
        assert await home.choices("Grandma") == []  # both are linked now

        dads, mums = (
            home.upload(home.dad, home.dads_grandma),
            home.upload(home.mum, home.mums_grandma),
        )
        await wait_until(lambda: home.dms(dads) == 1 and home.dms(mums) == 1, "both DMs")
        listing = await home.command("members", home.approver)
        assert "**Grandma** in dad ↔" in listing and "**Grandma** in mum ↔" in listing

        home.immich.merge_people(home.mums_grandma, home.mums_rose)  # Mum merges her away
        broken = await home.command("members", home.approver)
        assert "no longer in Immich in account mum" in broken
        assert broken.count("⚠️") == 1  # Dad's link is untouched
        still = home.upload(home.dad, home.dads_grandma)
        merged = home.upload(home.mum, home.mums_rose)
        await wait_until(lambda: home.dms(still) == 1, "the DM of Dad's next photo")
        await asyncio.sleep(SETTLE)
        assert home.dms(merged) == 0 and home.dms(dads) == home.dms(mums) == 1
    finally:
        await sidecar.stop()
