"""Several Immich accounts in one sidecar, end to end: the real process against the fake Immich
with two users, Dad and Mum, each with their own "Grandma"."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.engine.planning import build_watch, resolve_rules
from sidecar.engine.store import schema as store_schema
from sidecar.engine.store.database import Store
from sidecar.engine.uploads.poller import Poller
from sidecar.immich.client import ImmichClient
from sidecar.ops.metrics import Metrics
from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

KEYS = {"dad": "dad-key", "mum": "mum-key"}
ENV = {"DAD_KEY": KEYS["dad"], "MUM_KEY": KEYS["mum"]}
RULES = textwrap.dedent("""\
    - name: grandma
      people: {any: [Grandma]}
      targets: [stdout]
    - name: dads-grandma
      accounts: [dad]
      people: {any: [Grandma]}
      targets: [stdout]
    - name: videos
      asset_types: [VIDEO]
      targets: [stdout]
    """)

# The state file's version before the accounts migration: what today's single-key sidecar writes.
BEFORE_ACCOUNTS = next(
    i for i, script in enumerate(store_schema.MIGRATIONS) if "account_meta" in script
)


class Household:
    def __init__(self, immich: FakeImmich, tmp: Path) -> None:
        self.immich = immich
        self.config = tmp / "config.yaml"
        self.state = tmp / "state.db"
        self.port = free_port()
        self.dad = immich.add_user("Dad", api_key=KEYS["dad"])
        self.mum = immich.add_user("Mum", api_key=KEYS["mum"])
        self.dads_grandma = immich.add_person("Grandma", owner=self.dad)
        self.mums_grandma = immich.add_person("Grandma", owner=self.mum)
        immich.add_partner(self.dad, self.mum, in_timeline=True)  # Mum sees Dad's photos

    def write(self, rules: str = RULES) -> None:
        write_config(
            self.config,
            immich_url=self.immich.url,
            state=self.state,
            rules=rules,
            metrics_port=self.port,
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
        )

    def sidecar(self) -> SidecarProcess:
        return SidecarProcess(self.config, ENV, self.port)

    def upload(self, owner: str, *people: str, **kw: object) -> str:
        return self.immich.add_asset(created_at=datetime.now(UTC), owner=owner, people=people, **kw)


@pytest.fixture(params=[(2, 7, 5), (3, 2, 0)], ids=["immich-2.7", "immich-3.2"])
async def household(request, tmp_path):
    async with FakeImmich(version=request.param) as immich:
        home = Household(immich, tmp_path)
        home.write()
        yield home


def rules_of(process: SidecarProcess, asset: str) -> list[str]:
    return sorted(n["rule"] for n in process.delivered(asset))


async def test_each_grandma_is_found_in_her_own_account_and_posted_once(household):
    process = household.sidecar()
    await process.start()
    try:
        assert any("people: Grandma: dad, mum" in line for line in process.stderr)
        by_mum = household.upload(household.mum, household.mums_grandma)
        by_dad = household.upload(household.dad, household.dads_grandma)
        # Dad's video is in Mum's timeline too (partner sharing): both accounts see it.
        shared_video = household.upload(household.dad, type="VIDEO")
        for asset in (by_mum, by_dad, shared_video):
            await process.wait_for_delivery(asset)
        await process.wait_for_polls(3)
        assert rules_of(process, by_mum) == ["grandma"]  # dads-grandma ignores Mum's
        assert rules_of(process, by_dad) == ["dads-grandma", "grandma"]
        assert rules_of(process, shared_video) == ["videos"]
    finally:
        assert await process.stop() == 0


async def test_a_revoked_key_stops_only_its_account_and_nothing_is_lost(household):
    household.write(RULES.split("- name: dads-grandma")[0])
    process = household.sidecar()
    await process.start()
    try:
        await process.wait_for_polls(1)
        household.immich.revoke_key(KEYS["mum"])
        during = household.upload(household.mum, household.mums_grandma)
        await process.wait_for_log("account mum fails")
        by_dad = household.upload(household.dad, household.dads_grandma)
        await process.wait_for_delivery(by_dad)  # Dad's notifications go on
        await process.wait_for_polls(3)
        assert process.delivered(during) == []
        assert sum("account mum fails" in line for line in process.stderr) == 1
        assert await process.metric("immich_sidecar_account_up", 'account="mum"') == 0
        assert await process.metric("immich_sidecar_account_up", 'account="dad"') == 1
        assert await process.metric("immich_sidecar_account_outages_total", 'account="mum"') == 1
        ready = await process.readyz()
        assert ready.status_code == 503 and "Immich account mum fails" in ready.text
        assert "mum-key" not in "\n".join(process.stderr) + ready.text

        household.immich.restore_key(KEYS["mum"])
        await process.wait_for_delivery(during)  # caught up from where Mum's polls stopped
        await process.wait_for_polls(3)
        assert len(process.delivered(during)) == 1 and len(process.delivered(by_dad)) == 1
        assert any("account mum works again" in line for line in process.stderr)
        assert (await process.readyz()).status_code == 200
    finally:
        assert await process.stop() == 0


async def test_two_keys_of_one_user_are_refused_naming_the_second(household):
    text = household.config.read_text().replace("${MUM_KEY}", "${DAD_KEY}")
    household.config.write_text(text)
    line = next(n for n, t in enumerate(text.splitlines(), 1) if t.strip().startswith("mum:"))
    process = household.sidecar()
    await process.start(wait_started=False)
    assert await process.exited() == 2
    assert any(
        f"config.yaml:{line}: immich.accounts.mum: this key belongs to the same Immich user"
        in entry
        for entry in process.stderr
    ), process.stderr


async def test_an_upgrade_from_a_single_key_keeps_its_state(tmp_path, monkeypatch):
    """A state file written by the single-key sidecar (its Store and Poller, before the accounts
    migration), then the same key as the only account: nothing re-posted, nothing missed."""
    async with FakeImmich() as immich:
        grandma = immich.add_person("Grandma")
        config, state, port = tmp_path / "config.yaml", tmp_path / "state.db", free_port()
        rule = "- name: grandma\n  people: {any: [Grandma]}\n  targets: [stdout]\n"
        write_config(config, immich_url=immich.url, state=state, rules=rule, metrics_port=port)
        with monkeypatch.context() as before:
            before.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:BEFORE_ACCOUNTS])
            old = Store.open(state)
        settings = load_settings(config, {"IMMICH_API_KEY": immich.api_key})
        async with ImmichClient(immich.url, settings.immich.api_key, Metrics()) as client:
            poller = Poller(client, old, Metrics())
            poller.start_baseline(["grandma"], timedelta(0))
            posted = immich.add_asset(people=[grandma], created_at=datetime.now(UTC))
            await poller.poll(build_watch(settings, await resolve_rules(client, settings)))
        # Sent as that sidecar marked it (its outbox has no message columns yet).
        with old.connection:
            old.connection.execute(
                "UPDATE outbox SET state = 'sent', finished_at = ?",
                (datetime.now(UTC).timestamp(),),
            )
        assert old.connection.execute("PRAGMA user_version").fetchone()[0] == BEFORE_ACCOUNTS
        old.close()
        missed = immich.add_asset(people=[grandma], created_at=datetime.now(UTC))

        write_config(
            config,
            immich_url=immich.url,
            state=state,
            rules=rule,
            metrics_port=port,
            accounts={"dad": "IMMICH_API_KEY"},
        )
        process = SidecarProcess(config, {"IMMICH_API_KEY": immich.api_key}, port)
        await process.start()
        try:
            await process.wait_for_delivery(missed)
            await process.wait_for_polls(3)
            assert len(process.delivered(missed)) == 1
            assert process.delivered(posted) == []
            assert any("account dad keeps the poll state" in line for line in process.stderr)
        finally:
            assert await process.stop() == 0


ALBUM_RULE = "- name: albums\n  albums: {any: [%s]}\n  targets: [stdout]\n"


async def test_an_album_is_read_through_the_account_that_can_read_it(household):
    immich = household.immich
    holidays = immich.add_album("Holidays", owner=household.mum)  # private to Mum
    household.write(ALBUM_RULE % "Holidays")
    process = household.sidecar()
    await process.start()
    try:
        await process.wait_for_polls(2)  # the album's baseline
        added = household.upload(household.mum)
        immich.add_to_album(holidays, [added])
        await process.wait_for_delivery(added)
        await process.wait_for_polls(2)
        assert rules_of(process, added) == ["albums"]
    finally:
        assert await process.stop() == 0


async def test_two_albums_of_one_name_in_two_accounts_are_refused_with_their_ids(household):
    immich = household.immich
    dads = immich.add_album("Trip", owner=household.dad)
    mums = immich.add_album("Trip", owner=household.mum)
    household.write(ALBUM_RULE % "Trip")
    process = household.sidecar()
    await process.start(wait_started=False)
    assert await process.exited() == 2
    [problem] = [line for line in process.stderr if "albums are called 'Trip'" in line]
    assert dads in problem and mums in problem


async def test_dry_run_and_doctor_say_where_each_name_was_found(household, monkeypatch):
    from io import StringIO

    from sidecar.doctor.runner import diagnose
    from sidecar.engine.dry_run import _dry_run

    immich = household.immich
    immich.add_user("Leo", api_key="leo-key")
    monkeypatch.setenv("DAD_KEY", KEYS["dad"])
    monkeypatch.setenv("MUM_KEY", KEYS["mum"])
    monkeypatch.setenv("LEO_KEY", "leo-key")
    write_config(
        household.config,
        immich_url=immich.url,
        state=household.state,
        rules=RULES,
        metrics_port=household.port,
        accounts={"dad": "DAD_KEY", "mum": "MUM_KEY", "leo": "LEO_KEY"},
    )
    household.upload(household.mum, household.mums_grandma)
    household.upload(household.dad, type="VIDEO")  # Dad's, in Mum's timeline too
    out = StringIO()
    assert await _dry_run(household.config, 3600, out) == 0
    text = out.getvalue()
    assert "people: Grandma: dad, mum; not in leo" in text
    # The video is listed once, though two accounts see it.
    assert len([line for line in text.splitlines() if line.startswith("videos ->")]) == 1
    assert len([line for line in text.splitlines() if line.startswith("grandma ->")]) == 1
    report = StringIO()
    await diagnose(load_settings(household.config), report)
    assert "person Grandma: dad, mum; not in leo" in report.getvalue()
    assert "account leo: Immich accepts its key" in report.getvalue()


async def test_doctor_looks_each_person_up_in_every_account(household, monkeypatch) -> None:
    """A rule's person only Mum has and a post's person only Dad has pass, one line each, and so
    does an album only Mum can read; a name in neither account is one ✗ line, and so is a name
    only in an account its rule does not watch (issue 17: doctor asked only the first account)."""
    from io import StringIO

    from sidecar.doctor.runner import diagnose

    immich = household.immich
    immich.add_person("Auntie Flo", owner=household.mum)
    immich.add_person("Uncle Bob", owner=household.dad)
    trip = immich.add_album("Mum's trip", owner=household.mum)
    monkeypatch.setenv("DAD_KEY", KEYS["dad"])
    monkeypatch.setenv("MUM_KEY", KEYS["mum"])
    posts = textwrap.dedent("""\
        posts:
          - name: memories
            kind: memories
            cron: "0 9 * * *"
            people: {any: [Uncle Bob]}
            targets: [stdout]
        """)

    async def doctor(rules: str) -> tuple[int, list[str]]:
        write_config(
            household.config,
            immich_url=immich.url,
            state=household.state,
            rules=rules,
            metrics_port=household.port,
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
            extra=posts,
        )
        report = StringIO()
        code = await diagnose(load_settings(household.config), report)
        return code, report.getvalue().splitlines()

    code, lines = await doctor(
        textwrap.dedent("""\
            - name: flo
              people: {any: [Auntie Flo]}
              targets: [stdout]
            - name: trip
              albums: {any: [Mum's trip]}
              targets: [stdout]
            """)
    )
    assert [line for line in lines if "Mum's trip" in line] == [
        f'✓ album "Mum\'s trip" is Immich album {trip}'
    ]
    assert [line for line in lines if "Auntie Flo" in line] == [
        "✓ person Auntie Flo: mum; not in dad"
    ]
    assert [line for line in lines if "Uncle Bob" in line] == [
        "✓ person Uncle Bob: dad; not in mum"
    ]
    assert code == 0, "\n".join(lines)

    code, lines = await doctor("- name: nobody\n  people: {any: [Nobody]}\n  targets: [stdout]")
    named = [line for line in lines if "Nobody" in line]
    assert len(named) == 1 and named[0].startswith("✗ "), lines
    assert f"{household.config}:" in named[0] and "rules[0].people.any[0]" in named[0]
    assert code == 1

    code, lines = await doctor(
        "- name: flo\n  accounts: [dad]\n  people: {any: [Auntie Flo]}\n  targets: [stdout]"
    )
    named = [line for line in lines if "Auntie Flo" in line]
    assert len(named) == 1 and named[0].startswith("✗ "), lines
    assert "only in account mum" in named[0] and "rules[0].people.any[0]" in named[0]
    assert code == 1
