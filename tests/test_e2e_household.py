"""The household across accounts, end to end (issue 28): the real ``immich-sidecar run`` process
(through ``tests.fakes.run_sidecar``) against the fake Immich with two users, Dad and Mum, in
3.1's shape, and the fake Discord on 127.0.0.1.

Dad calls her Grandma, Mum calls her Oma; ``people_aliases`` says they are one person, and
``discord.members`` links her Discord account to that name."""

from __future__ import annotations

import json
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_harness import free_port, write_config
from tests.fakes import fake_discord as fd
from tests.fakes.fake_immich import FakeImmich
from tests.fault_rig import WrappedSidecar

pytestmark = pytest.mark.e2e

KEYS = {"DAD_KEY": "dad-key", "MUM_KEY": "mum-key"}
RULES = textwrap.dedent("""\
    - name: spotted
      targets: [dms]
    - name: grandma
      people: {any: [Grandma]}
      targets: [stdout]
    """)


class Household:
    def __init__(self, immich: FakeImmich, discord: fd.FakeDiscord, tmp: Path) -> None:
        self.immich, self.discord = immich, discord
        self.dad = immich.add_user("Dad", api_key=KEYS["DAD_KEY"])
        self.mum = immich.add_user("Mum", api_key=KEYS["MUM_KEY"])
        self.grandma = immich.add_person("Grandma", owner=self.dad)
        self.oma = immich.add_person("Oma", owner=self.mum)
        self.member = discord.add_user("rose")  # Grandma herself, on Discord
        self.config = tmp / "config.yaml"
        self.port = free_port()
        self.state = tmp / "state.db"
        self.env = {**KEYS, "DISCORD_TOKEN": fd.TOKEN, "FAKE_DISCORD_URL": discord.base_url}

    def write(self, rules: str = RULES, aliases: str = "Grandma: [Oma]") -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            targets="stdout: {console: true}\ndms: {discord_dm: members}",
            metrics_port=self.port,
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
            extra=textwrap.dedent(f"""\
                people_aliases:
                  {aliases}
                discord:
                  token: ${{DISCORD_TOKEN}}
                  members:
                    Grandma: "{self.member}"
                """),
        )

    async def start(self) -> WrappedSidecar:
        process = WrappedSidecar(self.config, self.env, self.port)
        await process.start()
        await process.wait_for_log("connected to Discord")
        return process

    def upload(self, owner: str, *people: str) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), owner=owner, people=people)

    def dms(self, asset: str) -> int:
        """The DMs to Grandma that show this asset."""
        return sum(asset in json.dumps(m.payload) for m in self.discord.dms_to(self.member))


@pytest.fixture
async def household(tmp_path) -> AsyncIterator[Household]:
    discord = fd.FakeDiscord()
    await discord.start()
    try:
        async with FakeImmich(version=(3, 1, 0)) as immich:
            home = Household(immich, discord, tmp_path)
            home.write()
            yield home
    finally:
        await discord.stop()


async def test_one_dm_per_photo_whichever_account_has_it(household) -> None:
    process = await household.start()
    try:
        assert any("people: Grandma: dad, mum (as Oma)" in line for line in process.stderr)
        dads = household.upload(household.dad, household.grandma)
        await process.wait_until(lambda: household.dms(dads) == 1, "the DM of Dad's photo")
        mums = household.upload(household.mum, household.oma)
        await process.wait_until(lambda: household.dms(mums) == 1, "the DM of Mum's photo")
        # Dad shares his library with Mum: his photos are in both timelines from now on.
        household.immich.add_partner(household.dad, household.mum, in_timeline=True)
        shared = household.upload(household.dad, household.grandma)
        nobody = household.upload(household.dad)
        await process.wait_until(lambda: household.dms(shared) == 1, "the DM of the shared one")
        await process.wait_for_polls(2)  # both accounts polled it again
        assert [household.dms(a) for a in (dads, mums, shared, nobody)] == [1, 1, 1, 0]
        # The rule naming Grandma found her as Oma in Mum's library: each photo posted once.
        for asset in (dads, mums, shared):
            assert [n["rule"] for n in process.delivered(asset)] == ["grandma"]
        assert process.delivered(nobody) == []
    finally:
        assert await process.stop() == 0


async def test_a_second_oma_is_followed_at_a_reload_and_a_restart_starts(household) -> None:
    """Issue 28 item 7, as found on real servers: a person given the same name later was never
    posted, and the next start refused the config. Now the reload follows her (she is Oma
    too, so Grandma's), it is said once, and a restart starts."""
    process = await household.start()
    try:
        twin = household.immich.add_person("Oma", owner=household.mum)
        photo = household.upload(household.mum, twin)
        await process.wait_for_polls(2)
        assert process.delivered(photo) == []  # not looked up again yet
        household.write(RULES + "# looked up again\n")
        await process.wait_for_log("config reloaded")
        await process.wait_for_delivery(photo)  # the rule's look-back window reaches it
        later = household.upload(household.mum, twin)  # and she is linked to Grandma now
        await process.wait_until(lambda: household.dms(later) == 1, "her DM")
        ambiguous = "people: 'Grandma' names 2 people in account mum"
        assert sum(ambiguous in line for line in process.stderr) == 1, process.stderr
    finally:
        assert await process.stop() == 0
    again = await household.start()
    try:
        await again.wait_for_polls(2)
        assert sum(ambiguous in line for line in again.stderr) == 1
        assert again.delivered(photo) == [] and household.dms(later) == 1  # nothing twice
    finally:
        assert await again.stop() == 0
