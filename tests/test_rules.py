from __future__ import annotations

from datetime import timedelta

import pytest

from sidecar.config.model import PeopleAliases, PeopleFilter, Rule
from sidecar.engine.rules.matching import RuleResolutionError, compile_rules, match, matches_for
from sidecar.immich.models import Person, PersonRef
from tests.factories import T0, make_asset, new_id

ALICE = Person(new_id(), "Alice")
BOB = Person(new_id(), "Bob")
CAROL = Person(new_id(), "Carol")
PEOPLE = [ALICE, BOB, CAROL]


def search(name: str) -> list[Person]:
    """Immich's person search: case-insensitive substring."""
    return [p for p in PEOPLE if name.casefold() in p.name.casefold()]


def rule(name="kids", **people) -> Rule:
    return Rule(name=name, targets=("stdout",), people=PeopleFilter(**people))


def on(*people: Person, **kw):
    return make_asset(people=tuple(PersonRef(p.id, p.name) for p in people), **kw)


def compiled(r: Rule):
    [c] = compile_rules([r], search)
    return c


def test_names_resolve_case_insensitively_and_ids_pass_through():
    c = compiled(rule(any=("alice", BOB.id)))
    assert c.any == {ALICE.id, BOB.id}


def test_unknown_name_lists_similar_people():
    with pytest.raises(RuleResolutionError) as err:
        compile_rules([rule(any=("Ali",))], search)
    assert err.value.problems == (
        "config: rules[0].people.any[0]: no person called 'Ali' in Immich (similar names: 'Alice')",
    )


def test_only_an_exact_name_is_taken_from_immichs_fuzzy_answer():
    zoe = Person(new_id(), "Zoë")
    fuzzy = [CAROL, zoe, Person(new_id(), "Caroline")]  # what a fuzzy search may answer
    [c] = compile_rules([rule(any=("zoe", "CAROL"))], lambda n: fuzzy)
    assert c.any == {zoe.id, CAROL.id}
    with pytest.raises(RuleResolutionError) as err:
        compile_rules([rule(any=("Caroll",))], lambda n: fuzzy)
    assert err.value.problems == (
        "config: rules[0].people.any[0]: no person called 'Caroll' in Immich "
        "(similar names: 'Carol', 'Caroline', 'Zoë')",
    )


def test_a_name_the_same_but_for_accents_is_taken_only_without_a_closer_one():
    zoe, plain = Person(new_id(), "Zoë"), Person(new_id(), "Zoe")
    [c] = compile_rules([rule(any=("zoë",))], lambda n: [plain, zoe])
    assert c.any == {zoe.id}
    [both] = compile_rules([rule(any=("Zoé",))], lambda n: [plain, zoe])  # neither is closer
    assert both.any == {plain.id, zoe.id}


def test_a_name_given_to_two_people_means_each_of_them_even_in_all():
    """Issue 28: a second person of the same name (an unmerged duplicate, mostly) is watched
    too instead of refusing the config; ``all: [Alice, Bob]`` needs one Alice and Bob."""
    twin = Person(new_id(), "alice")
    [c] = compile_rules([rule(all=("Alice", "Bob"))], lambda n: [ALICE, twin, BOB])
    assert c.all_groups == (frozenset({ALICE.id, twin.id}), frozenset({BOB.id}))
    assert match(c, on(twin, BOB)) is not None
    assert match(c, on(ALICE, BOB)) is not None
    assert match(c, on(ALICE, twin)) is None  # two Alices are not Bob


def test_an_alias_names_the_same_person_under_another_name():
    aliases = PeopleAliases((("Alice", "Ali", "Alice Rose"),))
    ali = Person(new_id(), "ALI")
    [c] = compile_rules([rule(any=("Alice",))], lambda n: [ali, CAROL], aliases=aliases)
    assert c.any == {ali.id}
    [by_alias] = compile_rules([rule(none=("Alice Rose",))], lambda n: [ali], aliases=aliases)
    assert by_alias.none == {ali.id}
    with pytest.raises(RuleResolutionError, match="no person called 'Alice'"):
        compile_rules([rule(any=("Alice",))], lambda n: [ali])  # without the alias: nobody


def test_every_problem_is_reported_at_once():
    with pytest.raises(RuleResolutionError) as err:
        compile_rules([rule(any=("Zed",)), rule("b", none=("Yan",))], search)
    assert len(err.value.problems) == 2


def test_any_matches_when_one_listed_person_is_present():
    c = compiled(rule(any=("Alice", "Bob")))
    assert match(c, on(BOB)) is not None
    assert match(c, on(CAROL)) is None
    assert match(c, on()) is None


def test_all_needs_every_person():
    c = compiled(rule(all=("Alice", "Bob")))
    assert match(c, on(ALICE, BOB, CAROL)) is not None
    assert match(c, on(ALICE)) is None


def test_none_excludes():
    c = compiled(rule(any=("Alice",), none=("Carol",)))
    assert match(c, on(ALICE)) is not None
    assert match(c, on(ALICE, CAROL)) is None


def test_rule_without_people_matches_every_asset_of_its_types():
    c = compiled(Rule(name="videos", targets=("t",), asset_types=frozenset({"VIDEO"})))
    assert not c.requires_person
    assert match(c, on(type="VIDEO")) is not None
    assert match(c, on(type="IMAGE")) is None


@pytest.mark.parametrize(
    "kw",
    [
        {"visibility": "archive"},
        {"visibility": "hidden"},
        {"visibility": "locked"},
        {"trashed": True},
    ],
)
def test_only_assets_on_the_timeline_match(kw):
    c = compiled(rule(any=("Alice",)))
    assert match(c, on(ALICE, **kw)) is None


def test_match_explains_who_was_recognised():
    c = compiled(rule(any=("Alice", "Bob"), none=("Carol",)))
    hit = match(c, on(ALICE, BOB))
    assert hit is not None
    assert hit.people == ("Alice", "Bob")
    assert hit.explain() == "Alice, Bob recognised, none of the excluded people; type IMAGE"


def test_assets_older_than_a_rules_baseline_are_skipped():
    c = compiled(rule(any=("Alice",)))
    old, new = on(ALICE, created=T0 - timedelta(seconds=1)), on(ALICE, created=T0)
    found = matches_for([c], [old, new], {"kids": T0})
    assert [m.asset.id for m in found] == [new.id]
