"""People links without Discord: the config's keys and their problems at file:line, member
names resolved like rule names, the state that survives restarts, who gets a DM or a mention,
and a linked person deleted or merged in Immich."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.config.model import DEFAULT_ACCOUNT, ConfigError, PeopleFilter, Rule, Secret
from sidecar.engine.accounts import Accounts, ImmichAccount
from sidecar.engine.members import Link, MemberDirectory
from sidecar.engine.planning import resolve_member_links
from sidecar.engine.rules.accounts import AccountRules, compile_across
from sidecar.engine.rules.matching import CompiledRule, RuleResolutionError
from sidecar.engine.store import schema as store_schema
from sidecar.engine.store.database import Store
from sidecar.engine.store.members import Claim
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Asset, Person, PersonRef
from sidecar.ops.metrics import Metrics
from tests.config_helpers import ENV, VALID, write_config
from tests.fakes.fake_immich import FakeImmich

MEMBERS = VALID.replace(
    "poll:\n",
    """\
  members:
    Alice: "111111111111111111"
    bob: "222222222222222222"
  members_approvers: ["333333333333333333"]
  members_channel: "444444444444444444"
  favourite_roles: [family]
poll:
""",
    1,
)
T0 = datetime(2026, 12, 1, 12, tzinfo=UTC)
# The state file's version before claims were made per account.
BEFORE_CLAIMS = next(
    i for i, script in enumerate(store_schema.MIGRATIONS) if "member_claim_by_account" in script
)


def load(tmp_path: Path, text: str):
    return load_settings(write_config(tmp_path, text), ENV)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.lines()


# ---------------------------------------------------------------------------- config


def test_members_keys_are_read(tmp_path: Path) -> None:
    text = MEMBERS.replace(
        "targets: [grandma]", "targets: [grandma, dm]\n    mention_members: true"
    )
    text = text.replace(
        "  stdout: {console: true}\n", "  stdout: {console: true}\n  dm: {discord_dm: members}\n"
    )
    settings = load(tmp_path, text)
    members = settings.discord.members
    assert members.links == (("Alice", 111111111111111111), ("bob", 222222222222222222))
    assert members.approvers == (333333333333333333,)
    assert members.channel_id == 444444444444444444
    assert members.claims == "approval" and members.claims_possible
    assert members.favourite_roles == ("family",)
    assert settings.rules[1].mention_members and not settings.rules[0].mention_members
    assert type(settings.targets["dm"]).__name__ == "DmTarget"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "  members_channel:",
            "  member_channel:",
            "config.yaml:10: discord.member_channel: 'member_channel' is not allowed here "
            "(did you mean 'members_channel'?)",
        ),
        (
            '  bob: "222222222222222222"',
            '  bob: "111111111111111111"',
            "config.yaml:8: discord.members.bob: Discord user 111111111111111111 is already "
            "linked to 'Alice': a member links to one person",
        ),
        (
            '  members_channel: "444444444444444444"\n',
            "",
            "config.yaml:9: discord.members_approvers: claims wait for approval in "
            "discord.members_channel by discord.members_approvers: set discord.members_channel "
            "too (or claims: open)",
        ),
        (
            "  favourite_roles: [family]",
            "  claims: sometimes",
            "config.yaml:11: discord.claims: expected one of approval, open, got 'sometimes'",
        ),
        (
            "targets: [family, stdout]",
            "targets: [family, stdout]\n    mention_members: yes please",
            "config.yaml:22: rules[0].mention_members: expected true or false, got text",
        ),
    ],
)
def test_member_problems_name_file_line_and_key(tmp_path, old, new, expected) -> None:
    assert old in MEMBERS
    lines = problems(tmp_path, MEMBERS.replace(old, new, 1))
    assert f"{tmp_path}/{expected}" in lines


def test_dms_and_member_mentions_need_the_bot(tmp_path: Path) -> None:
    text = VALID.replace("discord:\n  token: ${DISCORD_TOKEN}\n", "")
    text = text.replace(
        '  family: {channel_id: "123456789012345678"}\n', "  dm: {discord_dm: members}\n"
    )
    text = text.replace(
        "targets: [family, stdout]", "targets: [dm, stdout]\n    mention_members: true"
    )
    lines = problems(tmp_path, text)
    assert any("targets.dm.discord_dm: spotted DMs are sent by the bot" in line for line in lines)
    assert any(
        "rules[0].mention_members: mentions of members need the bot" in line for line in lines
    )


def test_unknown_audience_is_refused(tmp_path: Path) -> None:
    text = VALID.replace(
        "  stdout: {console: true}\n", "  stdout: {console: true}\n  dm: {discord_dm: everyone}\n"
    )
    assert any("targets.dm" in line for line in problems(tmp_path, text))


# ---------------------------------------------------------------------------- names


@pytest.fixture
async def immich() -> AsyncIterator[FakeImmich]:
    async with FakeImmich() as fake:
        yield fake


@pytest.fixture
async def client(immich: FakeImmich) -> AsyncIterator[ImmichClient]:
    async with ImmichClient(immich.url, Secret(immich.api_key), Metrics(), max_attempts=1) as c:
        yield c


def one_account(client: ImmichClient) -> Accounts:
    return Accounts([ImmichAccount(DEFAULT_ACCOUNT, client)])


async def test_member_names_resolve_like_rule_names(tmp_path, immich, client) -> None:
    alice = immich.add_person("Alice")
    bob = immich.add_person("Bob", hidden=True)  # hidden in Immich: still someone to link
    settings = load(tmp_path, MEMBERS)
    links, notes = await resolve_member_links(one_account(client), settings)
    assert links == [
        Link(alice, "Alice", 111111111111111111, "config", account=DEFAULT_ACCOUNT),
        Link(bob, "Bob", 222222222222222222, "config", account=DEFAULT_ACCOUNT),
    ]
    assert notes == []


async def test_a_near_miss_is_refused_with_candidates_at_file_line(
    tmp_path, immich, client
) -> None:
    immich.add_person("Alice")
    immich.add_person("Bob")
    settings = load(tmp_path, MEMBERS.replace("    Alice:", "    Alise:"))
    with pytest.raises(RuleResolutionError) as caught:
        await resolve_member_links(one_account(client), settings)
    [line] = caught.value.lines()
    assert line == (
        f"{tmp_path / 'config.yaml'}:7: discord.members.Alise: no person called 'Alise' in "
        "Immich (similar names: 'Alice')"
    )


# ---------------------------------------------------------------------------- state


def test_claims_and_dm_settings_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store.open(path)
    store.put_claim(Claim(7, "p-alice", "Alice", "pending", T0))
    store.put_claim(Claim(8, "p-bob", "Bob", "pending", T0))
    assert store.approve_claim(7, "p-alice", approver=9)
    assert not store.approve_claim(8, "p-carol", approver=9)  # not what 8 claimed
    store.set_dm_muted(7, True)
    store.set_dm_closed(8, "closed")
    store.close()
    store = Store.open(path)
    [alice, bob] = store.claims()
    assert (alice.user_id, alice.state, alice.decided_by) == (7, "approved", 9)
    assert (bob.user_id, bob.state) == (8, "pending")
    prefs = store.member_prefs()
    assert prefs[7].dm_muted and prefs[8].dm_closed == "closed"
    store.set_dm_muted(8, False)  # "dm on" forgets closed DMs: the member may have opened them
    assert store.member_prefs()[8].dm_closed is None
    assert store.drop_claim(7) and store.claims_of(7) == []
    store.close()


# ---------------------------------------------------------------------------- directory


def asset(*people: str) -> Asset:
    return Asset(
        id=f"a-{'-'.join(people)}",
        type="IMAGE",
        created_at=T0,
        taken_at=T0,
        original_file_name="IMG.jpg",
        visibility="timeline",
        is_trashed=False,
        people=tuple(PersonRef(p, p.removeprefix("p-").title()) for p in people),
    )


def compiled(name: str, *watched: str) -> CompiledRule:
    return CompiledRule(Rule(name=name, targets=("dm",)), any=frozenset(watched))


@pytest.fixture
def directory() -> MemberDirectory:
    store = Store.open(Path(":memory:"))
    directory = MemberDirectory(store)
    directory.configure(
        [Link("p-carol", "Carol", 3, "config")],
        [compiled("kids", "p-alice", "p-carol"), compiled("everyone")],
    )
    return directory


def test_config_links_win_over_claims(directory: MemberDirectory) -> None:
    store = directory.store
    store.put_claim(Claim(1, "p-alice", "Alice", "approved", T0))
    store.put_claim(Claim(2, "p-carol", "Carol", "approved", T0))  # config says Carol is 3
    store.put_claim(Claim(3, "p-bob", "Bob", "approved", T0))  # 3 is Carol in the config
    assert {(link.person_id, link.user_id, link.source) for link in directory.links()} == {
        ("p-carol", 3, "config"),
        ("p-alice", 1, "claim"),
    }
    assert directory.claim_refusal(4, "p-carol") == "that person is linked in the sidecar's config"
    assert "config" in (directory.claim_refusal(3, "p-dave") or "")
    assert (
        directory.claim_refusal(4, "p-alice") == "that person is already linked to another member"
    )
    assert directory.claim_refusal(1, "p-alice") is None  # claiming yourself again is fine
    assert "unclaim first" in (directory.claim_refusal(1, "p-dave") or "")


def test_dms_go_to_the_watched_linked_people_only(directory: MemberDirectory) -> None:
    directory.store.put_claim(Claim(1, "p-alice", "Alice", "approved", T0))
    directory.store.put_claim(Claim(2, "p-bob", "Bob", "approved", T0))
    photo = asset("p-alice", "p-bob", "p-carol", "p-dave")
    assert directory.dm_recipients("kids", photo) == (1, 3)  # Bob is not watched by kids
    assert directory.dm_recipients("everyone", photo) == (1, 2, 3)  # no people filter
    directory.set_dms(1, on=False)
    directory.close_dms(3, "closed")
    assert directory.dm_recipients("everyone", photo) == (2,)
    assert directory.mentions([photo]) == (("p-alice", 1), ("p-bob", 2), ("p-carol", 3))


async def test_a_merged_person_is_reported_not_kept(immich, client, caplog) -> None:
    caplog.set_level(logging.INFO)
    alice = immich.add_person("Alice")
    alice_again = immich.add_person("Alice (old)")
    carol = immich.add_person("Carol")
    directory = MemberDirectory(Store.open(Path(":memory:")))
    directory.configure([Link(carol, "Carol", 3, "config")], [compiled("everyone")])
    directory.store.put_claim(Claim(1, alice_again, "Alice (old)", "approved", T0))
    assert await directory.check_people(client) == []
    immich.merge_people(alice_again, alice)
    [broken] = await directory.check_people(client)
    assert (broken.user_id, broken.source) == (1, "claim")
    assert "no longer in Immich (deleted, or merged into another person)" in (broken.problem or "")
    assert directory.dm_recipients("everyone", asset(alice_again, carol)) == (3,)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "Alice (old)" in warnings[0]
    await directory.check_people(client)  # said once, not at every check
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


# ---------------------------------------------------------------------------- across accounts
# (issue 28) A member is linked to one person per account; deliveries are matched by person
# id, whichever account saw the asset.


def across(**people: list[str]) -> AccountRules:
    """Rules ``spotted`` (Grandma) and ``everyone`` compiled in each account, with the people
    named ``Grandma`` there (``account=[ids]``)."""
    candidates = {
        account: {"Grandma": [Person(pid, "Grandma") for pid in ids]}
        for account, ids in people.items()
    }
    rules = [Rule("spotted", ("dm",), people=PeopleFilter(any=("Grandma",))), Rule("all", ("dm",))]
    return compile_across(rules, candidates)


def test_a_rule_watches_its_people_of_every_account_for_dms() -> None:
    directory = MemberDirectory(Store.open(Path(":memory:")))
    rules = across(dad=["p-dads"], mum=["p-mums"])
    directory.configure(
        [
            Link("p-dads", "Grandma", 5, "config", account="dad"),
            Link("p-mums", "Grandma", 5, "config", account="mum"),
        ],
        rules,
        ("dad", "mum"),
    )
    # Mum's photo reaches the DM target through the rule as Mum's poll compiled it; the
    # directory knows the rule watches Mum's Grandma too (not the first account's only).
    assert directory.dm_recipients("spotted", asset("p-mums")) == (5,)
    assert directory.dm_recipients("spotted", asset("p-dads")) == (5,)
    assert directory.dm_recipients("all", asset("p-dads", "p-mums")) == (5,)  # once
    assert directory.mentions([asset("p-mums")]) == (("p-mums", 5),)


def test_claims_are_one_per_account_and_break_one_at_a_time() -> None:
    store = Store.open(Path(":memory:"))
    directory = MemberDirectory(store)
    directory.configure([], [], ("dad", "mum"))
    store.put_claim(Claim(1, "p-dads", "Grandma", "approved", T0, account="dad"))
    store.put_claim(Claim(1, "p-mums", "Oma", "pending", T0, account="mum"))
    assert [c.account for c in store.claims_of(1)] == ["dad", "mum"]
    assert store.approve_claim(1, "p-mums", approver=9)
    assert {(link.person_id, link.account) for link in directory.links_of(1)} == {
        ("p-dads", "dad"),
        ("p-mums", "mum"),
    }
    assert "in account mum already" in (directory.claim_refusal(1, "p-other", "mum") or "")
    assert directory.claim_refusal(2, "p-mums", "mum") == (
        "that person is already linked to another member"
    )
    store.put_claim(Claim(1, "p-mums-2", "Oma", "pending", T0, account="mum"))  # replaces hers
    assert [c.person_id for c in store.claims_of(1)] == ["p-dads", "p-mums-2"]
    store.set_claim_problem(1, "p-dads", "gone")
    assert [link.problem for link in directory.links_of(1)] == ["gone"]


async def test_a_person_merged_in_one_account_breaks_that_link_only(tmp_path) -> None:
    async with FakeImmich() as immich:
        dad = immich.add_user("Dad", api_key="dad-key")
        mum = immich.add_user("Mum", api_key="mum-key")
        dads = immich.add_person("Grandma", owner=dad)
        mums, mums_other = immich.add_person("Oma", owner=mum), immich.add_person("O", owner=mum)
        directory = MemberDirectory(Store.open(Path(":memory:")))
        directory.configure([], [], ("dad", "mum"))
        directory.store.put_claim(Claim(1, dads, "Grandma", "approved", T0, account="dad"))
        directory.store.put_claim(Claim(1, mums, "Oma", "approved", T0, account="mum"))
        async with (
            ImmichClient(immich.url, Secret("dad-key"), Metrics()) as dads_key,
            ImmichClient(immich.url, Secret("mum-key"), Metrics()) as mums_key,
        ):
            lookups = {"dad": dads_key, "mum": mums_key}
            assert await directory.check_people(lookups) == []  # each asked in its account
            immich.merge_people(mums, mums_other)
            [broken] = await directory.check_people(lookups)
    assert (broken.person_id, broken.account) == (mums, "mum")
    assert "no longer in Immich in account mum" in (broken.problem or "")
    assert directory.dm_recipients("all", asset(dads)) == (1,)
    assert directory.dm_recipients("all", asset(mums)) == ()


def test_claims_from_before_accounts_become_the_first_accounts(tmp_path, monkeypatch) -> None:
    path = tmp_path / "state.db"
    with monkeypatch.context() as before:
        before.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:BEFORE_CLAIMS])
        old = Store.open(path)
    old.connection.execute(
        "INSERT INTO member_claim (user_id, person_id, person_name, state, requested_at) "
        "VALUES ('7', 'p-alice', 'Alice', 'approved', 0)"
    )
    old.close()
    store = Store.open(path)  # migrated
    [claim] = store.claims()
    assert (claim.user_id, claim.person_id, claim.account) == (7, "p-alice", "")
    directory = MemberDirectory(store)
    directory.configure([], [], ("dad", "mum"))
    [link] = directory.links_of(7)
    assert (link.account, link.problem) == ("dad", None)
    directory.configure([], [], ("leo",))  # dad left the config: the link says so
    [link] = directory.links_of(7)
    assert "account dad, which is no longer in immich.accounts" in (link.problem or "")


def test_one_person_id_in_two_accounts_is_one_person() -> None:
    """Immich 3.2's cluster groups, as users report them (not the spec): both accounts show
    the same person id. Keyed by id, she is one person: one link, one DM, one claim."""
    shared = "p-shared"
    rules = across(dad=[shared], mum=[shared])
    assert rules.where_found() == ["Grandma: dad, mum"] and rules.ambiguities() == []
    directory = MemberDirectory(Store.open(Path(":memory:")))
    links = [
        Link(shared, "Grandma", 5, "config", account="dad"),
        Link(shared, "Oma", 5, "config", account="mum"),
    ]
    directory.configure(links, rules, ("dad", "mum"))
    assert len(directory.links()) == 1
    assert directory.dm_recipients("spotted", asset(shared)) == (5,)
    directory.configure([], rules, ("dad", "mum"))
    directory.store.put_claim(Claim(1, shared, "Grandma", "approved", T0, account="dad"))
    assert directory.claim_refusal(2, shared, "mum") == (
        "that person is already linked to another member"
    )
