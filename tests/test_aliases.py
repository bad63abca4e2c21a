"""``people_aliases`` (issue 28 item 3): the block read into ``PeopleAliases``, its problems at
file:line, and one name meaning the person of any of its names in rules, posts and
``discord.members`` (merged birthdays included)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, PeopleAliases, Secret
from sidecar.engine.posts.accounts import MergedAccounts
from sidecar.immich.client import ImmichClient
from sidecar.ops.metrics import Metrics
from tests.config_helpers import ENV, VALID, write_config
from tests.fakes.fake_immich import FakeImmich

ALIASES = (
    VALID
    + """\
people_aliases:
  Grandma: [Oma, "Grandma Rose"]
  Grandpa: [Opa]
"""
)


def load(tmp_path: Path, text: str):
    return load_settings(write_config(tmp_path, text), ENV)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.lines()


def test_the_block_is_read_into_groups_that_compare_ignoring_case(tmp_path) -> None:
    aliases = load(tmp_path, ALIASES).people_aliases
    assert aliases.groups == (("Grandma", "Oma", "Grandma Rose"), ("Grandpa", "Opa"))
    assert aliases.spellings("oma") == ("Grandma", "Oma", "Grandma Rose")
    assert aliases.canonical("GRANDMA ROSE") == "Grandma"
    assert aliases.spellings("Alice") == ("Alice",) and not aliases.aliased("Alice")
    assert load(tmp_path, VALID).people_aliases == PeopleAliases()


def test_a_name_in_two_groups_is_refused_at_its_line(tmp_path) -> None:
    text = ALIASES.replace("  Grandpa: [Opa]", "  Grandpa: [Opa, oma]")
    config = tmp_path / "config.yaml"
    line = text.splitlines().index("  Grandpa: [Opa, oma]") + 1
    assert problems(tmp_path, text) == [
        f"{config}:{line}: people_aliases.Grandpa[1]: 'oma' already names 'Grandma' here: a name "
        "belongs to one person (list every alias under one name)"
    ]
    twice = ALIASES.replace("  Grandpa: [Opa]", "  grandma: [Nana]")
    assert any("'grandma' is 'Grandma' again" in p for p in problems(tmp_path, twice))
    alias_as_key = ALIASES.replace("  Grandpa: [Opa]", "  Oma: [Nana]")
    assert any("'Oma' has aliases of its own here" in p for p in problems(tmp_path, alias_as_key))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("[]", "people_aliases.Grandma"), ("Oma", "people_aliases.Grandma"), ("[Oma, Oma]", "")],
)
def test_the_schema_wants_a_list_of_names(tmp_path, value, expected) -> None:
    text = VALID + f"people_aliases:\n  Grandma: {value}\n"
    found = problems(tmp_path, text)
    assert found and all("people_aliases" in p for p in found), found
    assert expected in found[0]


async def test_a_post_asks_each_account_by_its_own_name_and_merges_birthdays() -> None:
    """Posts see several accounts as one library: Oma in Mum's is Grandma in Dad's, so her
    birthday is one person's, and a question about her asks each account with its own id."""
    async with FakeImmich(version=(3, 1, 0)) as immich:
        dad = immich.add_user("Dad", api_key="dad-key")
        mum = immich.add_user("Mum", api_key="mum-key")
        born = date(1950, 3, 1)
        dads = immich.add_person("Grandma", owner=dad, birth_date=born)
        mums = immich.add_person("Oma", owner=mum, birth_date=born)
        for owner, person in ((dad, dads), (mum, mums)):
            immich.add_asset(owner=owner, people=[person])
        aliases = PeopleAliases((("Grandma", "Oma"),))
        async with (
            ImmichClient(immich.url, Secret("dad-key"), Metrics()) as dads_key,
            ImmichClient(immich.url, Secret("mum-key"), Metrics()) as mums_key,
        ):
            merged = MergedAccounts([dads_key, mums_key], aliases)
            everyone = await merged.all_people()
            assert [(p.id, p.name) for p in everyone] == [(dads, "Grandma")]
            assert merged.holders(dads) == (0, 1)
            photos = await merged.random_assets(person_ids=[dads], size=10)
            assert len(photos) == 2
            assert {p.id for a in photos for p in a.people} == {dads}  # Mum's id translated
            found = await MergedAccounts([dads_key, mums_key], aliases).search_person("Oma")
            assert found[0].id == mums  # the one who stands for her in this look-up
            without = MergedAccounts([dads_key, mums_key])
            assert len(await without.all_people()) == 2  # two people without the alias


async def test_doctor_says_which_accounts_person_each_name_is(tmp_path, monkeypatch) -> None:
    import io
    import textwrap

    from sidecar.doctor.runner import diagnose
    from tests.e2e_harness import free_port
    from tests.e2e_harness import write_config as write_e2e_config

    async with FakeImmich(version=(3, 1, 0)) as immich:
        dad = immich.add_user("Dad", api_key="dad-key")
        mum = immich.add_user("Mum", api_key="mum-key")
        dads = immich.add_person("Grandma", owner=dad)
        omas = [immich.add_person("Oma", owner=mum) for _ in range(2)]  # one unmerged twin
        monkeypatch.setenv("DAD_KEY", "dad-key")
        monkeypatch.setenv("MUM_KEY", "mum-key")
        path = tmp_path / "config.yaml"
        write_e2e_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            accounts={"dad": "DAD_KEY", "mum": "MUM_KEY"},
            rules="- name: g\n  people: {any: [Oma]}\n  targets: [stdout]\n",
            extra=textwrap.dedent("""\
                people_aliases:
                  Grandma: [Oma]
                discord:
                  members: {Grandma: "123456789012345678"}
                """),
        )
        out = io.StringIO()
        code = await diagnose(load_settings(path), out)
    lines = out.getvalue().splitlines()
    assert code == 0, lines
    [person] = [line for line in lines if line.startswith("✓ person Oma")]
    assert person.startswith(f"✓ person Oma: dad (as Grandma {dads}), mum (2 people) -> ")
    assert "'Oma' names 2 people in account mum" in person and all(o in person for o in omas)
    [member] = [line for line in lines if "discord.members" in line]
    assert member.startswith(
        "✓ discord.members: 'Grandma' is linked to Discord member 123456789012345678 as "
        "'Grandma' in dad, 'Oma' and 'Oma' in mum -> 'Grandma' names 2 people in account mum"
    )


async def test_a_look_up_asks_each_spelling_once_per_account(tmp_path, monkeypatch) -> None:
    """The look-up run does at start, at a reload and every hour: one person search per name
    or alias and account, shared by the rules and the member links (counted, not timed)."""
    import contextlib

    from sidecar.engine.accounts import Accounts, ImmichAccount
    from sidecar.engine.planning import PeopleSearch, resolve_account_rules, resolve_member_links

    async with FakeImmich(version=(3, 1, 0)) as immich:
        for name in ("Dad", "Mum"):
            owner = immich.add_user(name, api_key=f"{name}-key")
            immich.add_person("Grandma" if name == "Dad" else "Oma", owner=owner)
            immich.add_person("Leo", owner=owner)
        text = (
            ALIASES.replace("[Alice, Bob]", "[Grandma, Leo]")
            .replace("{all: [Alice], none: [Carol]}", "{any: [Oma]}")
            .replace(
                "  token: ${DISCORD_TOKEN}\n",
                '  token: ${DISCORD_TOKEN}\n  members: {Grandma: "1"}\n',
            )
        )
        settings = load(tmp_path, text)
        async with contextlib.AsyncExitStack() as stack:
            accounts = Accounts(
                [
                    ImmichAccount(
                        name,
                        await stack.enter_async_context(
                            ImmichClient(immich.url, Secret(f"{name}-key"), Metrics())
                        ),
                    )
                    for name in ("Dad", "Mum")
                ]
            )
            immich.reset_requests()
            search = PeopleSearch(settings.people_aliases)
            rules = await resolve_account_rules(accounts, settings, search=search)
            links, notes = await resolve_member_links(accounts, settings, search)
    asked = [r.query["name"] for r in immich.api_requests("GET", "/api/search/person")]
    # Grandma, Oma, Grandma Rose (one group) and Leo, in each of the two accounts.
    assert sorted(asked) == sorted(["Grandma", "Oma", "Grandma Rose", "Leo"] * 2)
    assert rules.where_found() == [
        "Grandma: Dad, Mum (as Oma)",
        "Leo: Dad, Mum",
        "Oma: Dad (as Grandma), Mum",
    ]
    assert [(link.account, link.person_name) for link in links] == [
        ("Dad", "Grandma"),
        ("Mum", "Oma"),
    ]
    assert notes == []
