"""Rules across several Immich accounts: each account has its own people, so a rule's person
names are looked up in every account and compiled once per account (pure; the lookups are
done by the caller).

A name is valid when it is found in at least one of the rule's accounts (same matching as for
one account: exact, ignoring case, then accents; near misses do not count; a name of a
``people_aliases`` group matches any name of the group). In an account where a name is
missing, a rule that needs that person cannot match and is left out of that account's poll; an
excluded person (``none:``) who is missing excludes nothing there. A name that means several
people in one account (given twice in Immich, or a name and its alias) means each of them
there; ``ambiguities`` says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sidecar.config.model import DEFAULT_ACCOUNT, KeyPath, PeopleAliases, Rule, format_key_path
from sidecar.engine.rules.matching import (
    NO_ALIASES,
    CompiledRule,
    NotInImmich,
    RuleResolutionError,
    compile_rules,
    exact_people,
    is_person_id,
)
from sidecar.immich.models import Person

_ABSENT = "absent:"  # stands for a name an account does not know, dropped after compiling

# account -> name -> Immich's answers for the name (and for each of its aliases)
Candidates = Mapping[str, Mapping[str, Sequence[Person]]]
People = Mapping[str, Mapping[str, tuple[Person, ...]]]  # name -> account -> the people it names


def one_account(rules: tuple[CompiledRule, ...], name: str = DEFAULT_ACCOUNT) -> AccountRules:
    """Rules resolved with a single client, as the rules of its one account."""
    return AccountRules({name: rules}, {})


@dataclass(frozen=True)
class AccountRules:
    """The rules compiled for each account, in config order, and where each name was found."""

    by_account: Mapping[str, tuple[CompiledRule, ...]]
    found_in: Mapping[str, tuple[str, ...]]  # person name -> accounts that know it
    # account -> rule name -> why the rule does not run there (``account_problem``)
    dropped: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    people: People = field(default_factory=dict)  # person name -> account -> its people there

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(self.by_account)

    @property
    def first(self) -> tuple[CompiledRule, ...]:
        """The first account's rules (album rules run there)."""
        return next(iter(self.by_account.values()), ())

    def where_found(self) -> list[str]:
        """One line per person name: ``Grandma: dad, mum (as Oma); not in leo``."""
        lines = []
        for name, found in sorted(self.found_in.items()):
            missing = [a for a in self.accounts if a not in found]
            places = ", ".join(self._in(name, account) for account in found)
            line = f"{name}: {places or 'in no account'}"
            lines.append(line + (f"; not in {', '.join(missing)}" if missing else ""))
        return lines

    def _in(self, name: str, account: str) -> str:
        """``mum``, ``mum (as Oma)`` or ``mum (2 people)``: the account, and how it knows
        the name when that is not simply the one person of that name."""
        people = self.people.get(name, {}).get(account, ())
        if len(people) > 1:
            return f"{account} ({len(people)} people)"
        other = [p.name for p in people if p.name.casefold() != name.casefold()]
        return f"{account} (as {other[0]})" if other else account

    def ids(self, name: str, account: str) -> tuple[str, ...]:
        return tuple(p.id for p in self.people.get(name, {}).get(account, ()))

    def ambiguities(self) -> list[str]:
        """One sentence per name that means several people in one account."""
        notes = []
        for name, accounts in sorted(self.people.items()):
            for account, people in accounts.items():
                if len(people) > 1:
                    notes.append(ambiguity(name, people, account if len(self.accounts) > 1 else ""))
        return notes

    def aliased(self) -> list[str]:
        """The names found in some account under another name (one of their aliases)."""
        return [
            name
            for name, accounts in sorted(self.people.items())
            if any(p.name.casefold() != name.casefold() for ps in accounts.values() for p in ps)
        ]

    def watched(self) -> dict[str, frozenset[str]]:
        """Each rule's watched people in every account (a person id is one person wherever
        Immich shows it)."""
        watched: dict[str, frozenset[str]] = {}
        for rules in self.by_account.values():
            for rule in rules:
                watched[rule.name] = watched.get(rule.name, frozenset()) | rule.watched_person_ids
        return watched


def people_changes(before: AccountRules, after: AccountRules) -> list[str]:
    """What a new look-up of the same names found otherwise: a name that now means someone
    else, more people, or no one in an account (a rename, a merge, a same-named person)."""
    changes = []
    several = len(after.accounts) > 1
    for name in sorted(set(before.people) & set(after.people)):
        for account in after.accounts:
            old, new = before.people[name].get(account, ()), after.people[name].get(account, ())
            if {p.id for p in old} == {p.id for p in new}:
                continue
            where = f" in account {account}" if several else ""
            if not new:
                changes.append(
                    f"{name!r} names no one{where} any more (it named {_people(old)}): its "
                    "photos there are not watched now; rename the person back in Immich or add "
                    "the new name to people_aliases"
                )
            elif not old:
                changes.append(f"{name!r} now names {_people(new)}{where}")
            else:
                changes.append(
                    f"{name!r}{where} now names {_people(new)} (it named {_people(old)})"
                )
    return changes


def _people(people: Sequence[Person]) -> str:
    return ", ".join(f"{p.name!r} {p.id}" for p in people)


def ambiguity(name: str, people: Sequence[Person], account: str = "") -> str:
    """The sentence for a name that means several people (each of them counts)."""
    where = f" in account {account}" if account else ""
    return (
        f"{name!r} names {len(people)} people{where} ({_people(people)}); each of them counts "
        f"as {name!r}: "
        "merge them in Immich if they are one person, or rename the others"
    )


def person_names(rules: Sequence[Rule]) -> list[str]:
    return sorted(
        {
            ref
            for rule in rules
            for ref in (*rule.people.any, *rule.people.all, *rule.people.none)
            if not is_person_id(ref)
        }
    )


def compile_across(
    rules: Sequence[Rule],
    candidates: Candidates,
    source: str = "config",
    line_of: Callable[[KeyPath], int | None] = lambda _path: None,
    runs: Callable[[Rule], bool] = lambda _rule: True,
    aliases: PeopleAliases = NO_ALIASES,
) -> AccountRules:
    """Each account's compiled rules (of those that ``runs``); RuleResolutionError lists every
    name found in none of a rule's accounts."""
    accounts = list(candidates)
    names = person_names([r for r in rules if runs(r)])
    people = {
        name: {a: tuple(exact_people(name, candidates[a].get(name, []), aliases)) for a in accounts}
        for name in names
    }
    found_in = {name: tuple(a for a in accounts if people[name][a]) for name in names}
    kept = {name: {a: found for a, found in people[name].items() if found} for name in names}
    if len(accounts) == 1:  # one account: exactly the single-key behaviour
        only = candidates[accounts[0]]
        compiled = compile_rules(
            rules, lambda n: only.get(n, []), source, line_of, runs=runs, aliases=aliases
        )
        return AccountRules({accounts[0]: compiled}, found_in, people=kept)
    problems = _nowhere_problems(rules, candidates, found_in, source, line_of, runs)
    by_account: dict[str, tuple[CompiledRule, ...]] = {}
    dropped: dict[str, dict[str, str]] = {}
    for account in accounts:

        def lookup(name: str, account: str = account) -> list[Person]:
            return list(people[name][account]) or [Person(id=_ABSENT + name, name=name)]

        compiled = compile_rules(rules, lookup, source, line_of, runs=runs, aliases=aliases)
        by_account[account] = tuple(
            kept_rule for rule in compiled if (kept_rule := _in_account(rule, account)) is not None
        )
        dropped[account] = {
            rule.name: why for rule in compiled if (why := account_problem(rule, account))
        }
    if problems:
        raise RuleResolutionError(problems)
    return AccountRules(by_account, found_in, dropped, kept)


def _nowhere_problems(
    rules: Sequence[Rule],
    candidates: Candidates,
    found_in: Mapping[str, tuple[str, ...]],
    source: str,
    line_of: Callable[[KeyPath], int | None],
    runs: Callable[[Rule], bool],
) -> list[str]:
    """Names found in none of their rule's accounts, with similar names from every account."""
    problems: list[str] = []
    for index, rule in enumerate(rules):
        if not runs(rule):
            continue
        allowed = set(rule.accounts or candidates)
        for kind in ("any", "all", "none"):
            for position, name in enumerate(getattr(rule.people, kind)):
                if is_person_id(name) or allowed & set(found_in.get(name, ())):
                    continue
                path: KeyPath = ("rules", index, "people", kind, position)
                line = line_of(path)
                where = f"{source if line is None else f'{source}:{line}'}: {format_key_path(path)}"
                elsewhere = [a for a in found_in.get(name, ()) if a not in allowed]
                if elsewhere:
                    problems.append(
                        NotInImmich(
                            f"{where}: {name!r} is only in account {', '.join(elsewhere)}, "
                            f"which this rule does not watch (accounts: "
                            f"{', '.join(rule.accounts)})",
                            "person",
                            name,
                        )
                    )
                    continue
                similar = sorted(
                    {p.name for a in allowed for p in candidates[a].get(name, []) if p.name}
                )
                hint = f" (similar names: {', '.join(repr(n) for n in similar[:8])})"
                problems.append(
                    NotInImmich(
                        f"{where}: no person called {name!r} in any Immich account"
                        + (hint if similar else ""),
                        "person",
                        name,
                    )
                )
    return problems


def _in_account(rule: CompiledRule, account: str) -> CompiledRule | None:
    """The rule as it runs in this account, or None when it cannot match there."""
    if account_problem(rule, account) is not None:
        return None
    return replace(
        rule,
        any=_known(rule.any),
        all=_known(rule.all),
        none=_known(rule.none),
        all_groups=tuple(_known(group) for group in rule.required_groups),
    )


def _known(ids: frozenset[str]) -> frozenset[str]:
    return frozenset(i for i in ids if not i.startswith(_ABSENT))


def account_problem(rule: CompiledRule, account: str) -> str | None:
    """Why the rule cannot match assets read through ``account`` (None: it can), in the words
    ``explain`` shows. ``rule`` is compiled across the accounts (absent names kept)."""
    if rule.rule.accounts and account not in rule.rule.accounts:
        return f"the rule's accounts [{', '.join(rule.rule.accounts)}] do not include {account}"
    if missing := [group for group in rule.required_groups if not _known(group)]:
        names = ", ".join(sorted(i.removeprefix(_ABSENT) for group in missing for i in group))
        return f"{names}, whom the rule needs, is not a person of account {account}"
    if rule.rule.people.any and not _known(rule.any):
        return f"none of the rule's people is a person of account {account}"
    return None
