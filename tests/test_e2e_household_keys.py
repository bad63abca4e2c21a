"""No account holds another, and keys rotate without a restart (issue 28 items 4 and 6), end to
end: the real process against the fake Immich 3.1 with two users, each with a key of their own.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

KEYS = {"dad": "dad-key", "bea": "bea-key"}
GRANDMA = textwrap.dedent("""\
    - name: grandma
      people: {any: [Grandma]}
      targets: [stdout]
    """)
VIDEOS = textwrap.dedent("""\
    - name: videos
      asset_types: [VIDEO]
      targets: [stdout]
    """)


class Household:
    """Dad (first account, key in the environment) and Bea (key in a file), each with their
    own Grandma."""

    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config.yaml"
        self.key_file = tmp / "bea.key"
        self.key_file.write_text(KEYS["bea"] + "\n")
        self.state = tmp / "state.db"
        self.port = free_port()
        self.dad = immich.add_user("Dad", api_key=KEYS["dad"])
        self.bea = immich.add_user("Bea", api_key=KEYS["bea"])
        self.dads_grandma = immich.add_person("Grandma", owner=self.dad)
        self.beas_grandma = immich.add_person("Grandma", owner=self.bea)

    def write(self, rules: str = GRANDMA) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            metrics_port=self.port,
            accounts={"dad": "DAD_KEY", "bea": "BEA_KEY"},
        )
        in_file = f"api_key_file: {self.key_file}"
        self.config.write_text(self.config.read_text().replace("api_key: ${BEA_KEY}", in_file))

    def sidecar(self) -> SidecarProcess:
        return SidecarProcess(self.config, {"DAD_KEY": KEYS["dad"]}, self.port)

    def upload(self, owner: str, *people: str, **kw: object) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), owner=owner, people=people, **kw)


@pytest.fixture
async def household(tmp_path):
    async with FakeImmich(version=(3, 1, 0)) as immich:
        home = Household(immich, tmp_path)
        home.write()
        yield home


def said(process: SidecarProcess, text: str) -> int:
    return sum(text in line for line in process.stderr)


@pytest.mark.parametrize("down", ["bea", "dad"], ids=["second-account", "first-account"])
async def test_a_key_revoked_before_start_holds_only_its_account(household, down):
    household.immich.revoke_key(KEYS[down])
    up = "dad" if down == "bea" else "bea"
    users = {"dad": household.dad, "bea": household.bea}
    grandmas = {"dad": household.dads_grandma, "bea": household.beas_grandma}
    process = household.sidecar()
    await process.start()
    try:
        working = household.upload(users[up], grandmas[up])
        await process.wait_for_delivery(working)  # the other account posts from the first poll
        assert not any("Immich is not usable" in line for line in process.stderr)
        held = household.upload(users[down], grandmas[down])
        await process.wait_for_polls(2)
        assert process.delivered(held) == []
        assert said(process, f"account {down} fails") == 1  # said once, however many polls
        assert await process.metric("immich_sidecar_account_up", f'account="{down}"') == 0
        assert f"Immich account {down} fails" in (await process.readyz()).text

        household.immich.restore_key(KEYS[down])  # back: the account starts
        await process.wait_for_delivery(held)
        await process.wait_for_polls(2)
        assert len(process.delivered(held)) == 1 and len(process.delivered(working)) == 1
        assert said(process, f"account {down} works again") == 1
        assert (await process.readyz()).status_code == 200
        assert KEYS[down] not in "\n".join(process.stderr)
    finally:
        assert await process.stop() == 0


async def test_a_key_revoked_while_running_then_replaced_in_its_file(household):
    """Issue 28 item 6: an unrelated rule added during Bea's outage applies at once; her new
    key in the file applies within two polls, with her cursors, so her outage's photo posts
    once; no restart, no postponed reload."""
    process = household.sidecar()
    await process.start()
    try:
        await process.wait_for_polls(1)
        household.immich.revoke_key(KEYS["bea"])
        during = household.upload(household.bea, household.beas_grandma)
        await process.wait_for_log("account bea fails")

        mark = len(process.stderr)
        household.write(GRANDMA + VIDEOS)
        await process.wait_for_log("config reloaded: 2 rules", after=mark)
        await process.wait_for_polls(1)  # the new rule's baseline: from its first poll on
        video = household.upload(household.dad, type="VIDEO")
        await process.wait_for_delivery(video)
        assert await process.metric("immich_sidecar_config_last_reload_successful") == 1

        household.immich.add_user("Leo", api_key="leo-key")
        household.key_file.write_text("leo-key\n")  # another user's key by mistake: refused
        await process.wait_for_log("config reload rejected")
        assert said(process, "account bea: state file") == 1
        household.immich.add_key(household.bea, "bea-key-2")  # made anew in Immich
        polls = await process.successful_polls()
        household.key_file.write_text("bea-key-2\n")  # and put in the file
        await process.wait_for_log("account bea: a new API key is in use")
        assert await process.successful_polls() <= polls + 2
        await process.wait_for_delivery(during)
        await process.wait_for_polls(2)
        assert len(process.delivered(during)) == 1 and len(process.delivered(video)) == 1
        assert not any("postponed" in line for line in process.stderr)
        assert not any("next restart" in line for line in process.stderr)
        assert (await process.readyz()).status_code == 200
        assert await process.metric("immich_sidecar_config_last_reload_successful") == 1
        assert not any(key in "\n".join(process.stderr) for key in ("bea-key", "leo-key"))
    finally:
        assert await process.stop() == 0


async def test_the_only_key_rotated_in_its_file_applies_without_a_restart(tmp_path):
    """One account (Immich 2.7): the revoked key's outage ends with the new key in its file."""
    async with FakeImmich(version=(2, 7, 5), api_key="old-key") as immich:
        grandma = immich.add_person("Grandma")
        key_file, config, port = tmp_path / "immich.key", tmp_path / "config.yaml", free_port()
        key_file.write_text("old-key\n")
        write_config(
            config, immich_url=immich.url, state=tmp_path / "state.db", rules=GRANDMA,
            metrics_port=port,
        )  # fmt: skip
        text = config.read_text().replace("api_key: ${IMMICH_API_KEY}", f"api_key_file: {key_file}")
        config.write_text(text)
        process = SidecarProcess(config, {}, port)
        await process.start()
        try:
            await process.wait_for_polls(1)
            immich.revoke_key("old-key")
            during = immich.add_asset(people=[grandma], created_at=datetime.now(UTC))
            await process.wait_for_log("401")
            immich.api_key = "new-key"  # a key made anew for the same user
            key_file.write_text("new-key\n")
            await process.wait_for_log("a new Immich API key is in use")
            await process.wait_for_delivery(during)
            assert (await process.readyz()).status_code == 200
            assert not any("next restart" in line for line in process.stderr)
        finally:
            assert await process.stop() == 0


async def test_a_key_lacking_a_permission_turns_the_feature_off_in_its_account_only(household):
    """Bea's key without asset.statistics: watching is off for Bea only (one line, one metric
    label), Dad's photos post; once the key has it, Bea's photos of the meantime post."""
    without = ["asset.read", "asset.view", "person.read", "user.read"]
    household.immich.set_permissions(household.bea, without)
    process = household.sidecar()
    await process.start()
    try:
        by_dad = household.upload(household.dad, household.dads_grandma)
        by_bea = household.upload(household.bea, household.beas_grandma)
        await process.wait_for_delivery(by_dad)
        await process.wait_for_polls(2)
        assert process.delivered(by_bea) == []
        off = "account bea: watching for new photos is off: the Immich API key lacks "
        off += "asset.statistics"
        assert said(process, off) == 1
        feature = 'account="bea",feature="watching"'
        assert await process.metric("immich_sidecar_account_feature_enabled", feature) == 0
        assert await process.metric("immich_sidecar_feature_enabled", 'feature="watching"') == 1
        assert said(process, "account dad: watching") == 0
        ready = await process.readyz()  # Bea's rules do not run: not ready, and why
        assert ready.status_code == 503 and "account bea: watching for new photos is off" in (
            ready.text
        )

        household.immich.set_permissions(household.bea, None)  # ticked in Immich
        await process.wait_for_delivery(by_bea)
        assert said(process, "account bea: watching for new photos is on") == 1
        assert await process.metric("immich_sidecar_account_feature_enabled", feature) == 1
        await process.wait_for_polls(1)
        assert (await process.readyz()).status_code == 200
    finally:
        assert await process.stop() == 0


async def test_a_permission_taken_from_one_key_while_running_is_its_accounts_alone(household):
    """Everything on, so the listing is not read: Bea's 403 itself turns watching off for
    Bea (said once), not an outage of her account; Dad's photos go on."""
    process = household.sidecar()
    await process.start()
    try:
        await process.wait_for_polls(1)
        kept = ["asset.view", "asset.statistics", "person.read", "user.read"]
        household.immich.set_permissions(household.bea, kept)  # asset.read taken away
        await process.wait_for_log("account bea: watching for new photos is off")
        by_dad = household.upload(household.dad, household.dads_grandma)
        await process.wait_for_delivery(by_dad)
        await process.wait_for_polls(3)
        assert said(process, "account bea: watching for new photos is off") == 1
        assert said(process, "account bea fails") == 0 and said(process, "poll failed") == 0
        assert await process.metric("immich_sidecar_account_up", 'account="bea"') == 1
    finally:
        assert await process.stop() == 0
