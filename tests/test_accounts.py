"""Several Immich accounts: person names resolved in every account (pure), per-account state in
the store (the single-key state kept as the first account's), and their config errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, PeopleAliases, PeopleFilter, Rule
from sidecar.engine.rules.accounts import compile_across, people_changes
from sidecar.engine.rules.matching import RuleResolutionError
from sidecar.engine.store import schema as store_schema
from sidecar.engine.store.accounts import AccountStore, adopt_account, stored_accounts
from sidecar.engine.store.database import Store
from sidecar.immich.models import Person

DADS_GRANDMA, MUMS_GRANDMA = (
    "d0000000-0000-4000-8000-000000000001",
    "m0000000-0000-4000-8000-000000000002",
)
LEO = "d0000000-0000-4000-8000-000000000003"
T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)

# The state file's version before the accounts migration: what today's single-key sidecar writes.
BEFORE_ACCOUNTS = next(
    i for i, script in enumerate(store_schema.MIGRATIONS) if "account_meta" in script
)


def rule(name: str, *, any=(), all=(), none=(), accounts=()) -> Rule:
    return Rule(
        name=name,
        targets=("stdout",),
        people=PeopleFilter(any=tuple(any), all=tuple(all), none=tuple(none)),
        accounts=tuple(accounts),
    )


CANDIDATES: dict[str, dict[str, list[Person]]] = {
    "dad": {"Grandma": [Person(DADS_GRANDMA, "Grandma")], "Leo": [Person(LEO, "Leo")]},
    "mum": {"Grandma": [Person(MUMS_GRANDMA, "grandma")], "Leo": [Person("x", "Leonie")]},
    "leo": {"Grandma": [], "Leo": []},
}


def test_a_name_is_resolved_in_every_account_that_knows_it():
    rules = [
        rule("grandma", any=["Grandma"]),
        rule("leo", any=["Leo"]),
        rule("both", all=["Grandma", "Leo"]),
        rule("dads", any=["Grandma"], accounts=["dad"]),
        rule("no-leo", none=["Leo"]),
    ]
    compiled = compile_across(rules, CANDIDATES)
    by = {a: {r.name: r for r in rs} for a, rs in compiled.by_account.items()}
    assert by["dad"]["grandma"].any == {DADS_GRANDMA}
    assert by["mum"]["grandma"].any == {MUMS_GRANDMA}  # same name ignoring case
    assert "grandma" not in by["leo"]  # a rule that needs someone absent cannot match there
    assert set(by["mum"]) == {"grandma", "no-leo"}  # "Leonie" is a near miss, not Leo
    assert by["dad"]["both"].all == {DADS_GRANDMA, LEO}
    assert "dads" in by["dad"] and "dads" not in by["mum"]
    assert by["mum"]["no-leo"].none == frozenset() and by["mum"]["no-leo"].requires_person is False
    assert compiled.where_found() == ["Grandma: dad, mum; not in leo", "Leo: dad; not in mum, leo"]


def test_a_name_in_no_account_is_refused_with_its_line_and_similar_names():
    with pytest.raises(RuleResolutionError) as caught:
        compile_across(
            [rule("x", any=["Leon"]), rule("y", any=["Leo"], accounts=["mum"])],
            {**CANDIDATES, "mum": {**CANDIDATES["mum"], "Leon": [Person("x", "Leonie")]}},
            source="config.yaml",
            line_of=lambda path: 10 + path[1] if isinstance(path[1], int) else None,
        )
    assert caught.value.problems == (
        "config.yaml:10: rules[0].people.any[0]: no person called 'Leon' in any Immich account "
        "(similar names: 'Leonie')",
        "config.yaml:11: rules[1].people.any[0]: 'Leo' is only in account dad, which this rule "
        "does not watch (accounts: mum)",
    )


def test_a_name_of_two_people_in_one_account_means_both_there_and_is_said():
    """Issue 28: not refused (a restart would not start): both people count, in that account
    only, and ``ambiguities`` says so once per name and account."""
    twice = {"Grandma": [Person(DADS_GRANDMA, "Grandma"), Person(LEO, "Grandma")]}
    compiled = compile_across(
        [rule("g", any=["Grandma"])], {"dad": twice, "mum": CANDIDATES["mum"]}
    )
    assert compiled.by_account["dad"][0].any == {DADS_GRANDMA, LEO}
    assert compiled.by_account["mum"][0].any == {MUMS_GRANDMA}
    [note] = compiled.ambiguities()
    assert note.startswith("'Grandma' names 2 people in account dad (")
    assert DADS_GRANDMA in note and LEO in note and MUMS_GRANDMA not in note
    assert compiled.where_found() == ["Grandma: dad (2 people), mum"]


def test_aliases_find_one_person_under_each_name_and_say_where():
    aliases = PeopleAliases((("Grandma", "Oma", "Grandma Rose"),))
    candidates: dict[str, dict[str, list[Person]]] = {
        "dad": {"Grandma": [Person(DADS_GRANDMA, "Grandma"), Person("x", "Grandpa")]},
        "mum": {"Grandma": [Person(MUMS_GRANDMA, "oma")]},
        "leo": {"Grandma": [Person("y", "Grandma Rosie")]},  # near misses count for nothing
    }
    rules = [rule("g", any=["Grandma"]), rule("and-leo", all=["Grandma"])]
    compiled = compile_across(rules, candidates, aliases=aliases)
    assert compiled.by_account["dad"][0].any == {DADS_GRANDMA}
    assert compiled.by_account["mum"][0].any == {MUMS_GRANDMA}
    assert [r.name for r in compiled.by_account["leo"]] == []  # nobody of hers there
    assert compiled.where_found() == ["Grandma: dad, mum (as oma); not in leo"]
    assert compiled.aliased() == ["Grandma"]
    assert compiled.watched() == {
        "g": {DADS_GRANDMA, MUMS_GRANDMA},
        "and-leo": {DADS_GRANDMA, MUMS_GRANDMA},
    }


def test_what_a_second_look_up_finds_otherwise_is_said():
    before = compile_across([rule("g", any=["Grandma"])], CANDIDATES)
    new_grandma = Person("n0000000-0000-4000-8000-000000000009", "Grandma")
    renamed: dict[str, dict[str, list[Person]]] = {
        "dad": {"Grandma": [], "Leo": []},  # Dad renamed her
        "mum": {"Grandma": [Person(MUMS_GRANDMA, "Grandma"), new_grandma], "Leo": []},
        "leo": {"Grandma": [new_grandma], "Leo": []},
    }
    after = compile_across([rule("g", any=["Grandma"])], renamed)
    dad, mum, leo = people_changes(before, after)
    assert dad.startswith(
        f"'Grandma' names no one in account dad any more (it named 'Grandma' {DADS_GRANDMA})"
    )
    assert mum == (
        f"'Grandma' in account mum now names 'Grandma' {MUMS_GRANDMA}, 'Grandma' {new_grandma.id} "
        f"(it named 'grandma' {MUMS_GRANDMA})"
    )
    assert leo == f"'Grandma' now names 'Grandma' {new_grandma.id} in account leo"
    assert people_changes(after, after) == []


def old_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A state file as the single-key sidecar wrote it (its migrations, its meta keys)."""
    with monkeypatch.context() as before:
        before.setattr(store_schema, "MIGRATIONS", store_schema.MIGRATIONS[:BEFORE_ACCOUNTS])
        store = Store.open(path)
    store.set_time("baseline", T0)
    store.set_time("stream_cursor", T0 + timedelta(hours=1))
    store.set_time("last_successful_poll_started", T0 + timedelta(hours=2))
    return store


def test_the_single_key_state_becomes_the_first_accounts(tmp_path, monkeypatch):
    old_store(tmp_path / "state.db", monkeypatch).close()
    store = Store.open(tmp_path / "state.db")
    assert stored_accounts(store) == [""]
    assert adopt_account(store, "", "dad")
    dad, mum = AccountStore(store, "dad"), AccountStore(store, "mum")
    assert dad.get_time("stream_cursor") == T0 + timedelta(hours=1)
    assert dad.get_time("last_successful_poll_started") == T0 + timedelta(hours=2)
    assert mum.get_time("stream_cursor") is None
    mum.set_time("stream_cursor", T0)
    assert not adopt_account(store, "mum", "dad")  # dad has state of its own: kept
    assert dad.get_time("stream_cursor") == T0 + timedelta(hours=1)
    store.close()


def test_an_account_added_later_starts_at_its_own_baseline(tmp_path):
    store = Store.open(tmp_path / "state.db")
    assert store.rule_baselines(["kids"], since_if_new=T0) == {"kids": T0}
    mum = AccountStore(store, "mum")
    mum.set_time("baseline", T0 + timedelta(days=3))
    assert mum.rule_baselines(["kids"], since_if_new=T0) == {"kids": T0 + timedelta(days=3)}
    assert AccountStore(store, "dad").rule_baselines(["kids"], since_if_new=T0) == {"kids": T0}
    store.close()


def write(tmp_path: Path, immich: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "immich:\n  url: http://immich:2283\n"
        + immich
        + "targets:\n  stdout: {console: true}\n"
        + "rules:\n  - name: r\n    targets: [stdout]\n"
        + extra
    )
    return path


def test_accounts_in_the_config(tmp_path):
    (tmp_path / "mum").write_text("mum-secret\n")
    path = write(
        tmp_path,
        "  accounts:\n    dad:\n      api_key: dad-secret\n    mum:\n      api_key_file: mum\n",
        "    accounts: [mum]\n",
    )
    settings = load_settings(path, {})
    assert [(a.name, a.api_key.reveal(), a.line) for a in settings.immich.accounts] == [
        ("dad", "dad-secret", 4),
        ("mum", "mum-secret", 6),
    ]
    assert settings.immich.api_key.reveal() == "dad-secret"  # the first account's
    assert settings.rules[0].accounts == ("mum",)
    single = load_settings(write(tmp_path, "  api_key: k\n"), {})
    assert [a.name for a in single.immich.accounts] == ["default"]


def test_unknown_accounts_and_two_kinds_of_key_are_refused_at_their_line(tmp_path):
    path = write(
        tmp_path,
        "  api_key: k\n  accounts:\n    dad:\n      api_key: d\n",
        "    accounts: [dda]\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {})
    text = str(caught.value)
    assert "config.yaml:4: immich.accounts: api_key and accounts are both set" in text, text
    assert (
        "config.yaml:12: rules[0].accounts[0]: 'dda' is not an account in immich.accounts "
        "(did you mean 'dad'?)" in text
    ), text
    assert "k\n" not in text and "'d'" not in text


@pytest.mark.parametrize("version", [(2, 7, 5), (3, 2, 0)])
async def test_an_idle_poll_costs_per_account_not_per_photo(version):
    from tests.bench.account_cost import idle_cost
    from tests.bench.poll_cost import idle_budget

    one = await idle_cost(version, 1, 0)
    assert one[0] == idle_budget(version)
    assert await idle_cost(version, 2, 0) == (2 * one[0], 2 * one[1])
    assert await idle_cost(version, 2, 300) == (2 * one[0], 2 * one[1])


def test_check_config_names_the_accounts_and_points_to_doctor(tmp_path, capsys):
    from sidecar.cli.main import main

    path = write(tmp_path, "  accounts:\n    dad:\n      api_key: d\n    mum:\n      api_key: m\n")
    assert main(["check-config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Immich accounts: dad, mum; run doctor to see in which of them" in out
    assert "api_key" not in out and ": d\n" not in out


async def test_start_keeps_the_single_key_state_and_drops_a_removed_account(
    tmp_path, monkeypatch, caplog
):
    from sidecar.config.model import Secret
    from sidecar.engine.accounts import AccountPolls, Accounts, ImmichAccount
    from sidecar.immich.client import ImmichClient
    from sidecar.ops.metrics import Metrics

    old_store(tmp_path / "state.db", monkeypatch).close()
    store = Store.open(tmp_path / "state.db")
    AccountStore(store, "leo").set_time("stream_cursor", T0)  # an account since removed
    clients = [ImmichClient("http://127.0.0.1:9", Secret("k"), Metrics()) for _ in range(2)]
    try:
        accounts = Accounts([ImmichAccount("dad", clients[0]), ImmichAccount("mum", clients[1])])
        polls = AccountPolls(accounts, store, Metrics(), clock=lambda: T0 + timedelta(days=9))
        with caplog.at_level("INFO"):
            polls.start(["kids"], backfill=timedelta(0))
    finally:
        for client in clients:
            await client.aclose()
    assert stored_accounts(store) == ["dad", "mum"]
    assert AccountStore(store, "dad").get_time("stream_cursor") == T0 + timedelta(hours=1)
    assert AccountStore(store, "mum").get_time("baseline") == T0 + timedelta(days=9)  # from now
    assert "account leo is no longer in immich.accounts: its cursors are dropped" in caplog.text
    assert "account dad keeps the poll state of the single-key configuration" in caplog.text
    store.close()


def test_unread_windows_are_each_accounts_own(tmp_path, monkeypatch):
    old = old_store(tmp_path / "state.db", monkeypatch)
    old.close()
    store = Store.open(tmp_path / "state.db")
    store.open_unread_window((T0, T0 + timedelta(minutes=5)), T0, T0, ["a"])  # the single key's
    assert adopt_account(store, "", "dad")
    dad, mum = AccountStore(store, "dad"), AccountStore(store, "mum")
    mum.open_unread_window((T0, T0 + timedelta(minutes=1)), T0, T0, [])
    [window] = dad.unread_windows()
    assert (window.created_before, window.seen) == (T0 + timedelta(minutes=5), 1)
    assert [w.created_before for w in mum.unread_windows()] == [T0 + timedelta(minutes=1)]
    from sidecar.engine.store.accounts import drop_account

    drop_account(store, "mum")
    assert mum.unread_windows() == [] and len(dad.unread_windows()) == 1
    store.close()
