"""Rules across several Immich accounts: each account has its own people, so a rule's person
names are looked up in every account and compiled once per account (pure; the lookups are
done by the caller).

A name is valid when it is found in at least one of the rule's accounts (same matching as for
one account: exact, ignoring case, then accents; near misses do not count). In an account
where a name is missing, a rule that needs that person cannot match and is left out of that
account's poll; an excluded person (``none:``) who is missing excludes nothing there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from sidecar.config.model import DEFAULT_ACCOUNT, KeyPath, Rule, format_key_path
from sidecar.engine.rules.matching import (
    CompiledRule,
    RuleResolutionError,
    compile_rules,
    exact_people,
    is_person_id,
)
from sidecar.immich.models import Person

_ABSENT = "absent:"  # stands for a name an account does not know, dropped after compiling

Candidates = Mapping[str, Mapping[str, Sequence[Person]]]  # account -> name -> search answer


def one_account(rules: tuple[CompiledRule, ...], name: str = DEFAULT_ACCOUNT) -> AccountRules:
    """Rules resolved with a single client, as the rules of its one account."""
    return AccountRules({name: rules}, {})


@dataclass(frozen=True)
class AccountRules:
    """The rules compiled for each account, in config order, and where each name was found."""

    by_account: Mapping[str, tuple[CompiledRule, ...]]
    found_in: Mapping[str, tuple[str, ...]]  # person name -> accounts that know it
    # account -> rule name -> why the rule does not run there (``account_problem``)
    dropped: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)

    @property
    def accounts(self) -> tuple[str, ...]:
        return tuple(self.by_account)

    @property
    def first(self) -> tuple[CompiledRule, ...]:
        """The first account's rules (album rules run there)."""
        return next(iter(self.by_account.values()), ())

    def where_found(self) -> list[str]:
        """One line per person name: ``Grandma: dad, mum; not in leo``."""
        lines = []
        for name, found in sorted(self.found_in.items()):
            missing = [a for a in self.accounts if a not in found]
            line = f"{name}: {', '.join(found) or 'in no account'}"
            lines.append(line + (f"; not in {', '.join(missing)}" if missing else ""))
        return lines


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
) -> AccountRules:
    """Each account's compiled rules (of those that ``runs``); RuleResolutionError lists every
    name found in none of a rule's accounts, and every name that is ambiguous in an account."""
    accounts = list(candidates)
    if len(accounts) == 1:  # one account: exactly the single-key behaviour
        only = candidates[accounts[0]]
        compiled = compile_rules(rules, lambda n: only.get(n, []), source, line_of, runs=runs)
        found = {n: (accounts[0],) for n in person_names([r for r in rules if runs(r)])}
        return AccountRules({accounts[0]: compiled}, found)
    found_in = {
        name: tuple(a for a in accounts if exact_people(name, candidates[a].get(name, [])))
        for name in person_names([r for r in rules if runs(r)])
    }
    problems = _nowhere_problems(rules, candidates, found_in, source, line_of, runs)
    by_account: dict[str, tuple[CompiledRule, ...]] = {}
    dropped: dict[str, dict[str, str]] = {}
    for account in accounts:
        known = candidates[account]

        def lookup(name: str, known: Mapping[str, Sequence[Person]] = known) -> list[Person]:
            if exact_people(name, known.get(name, [])):
                return list(known[name])
            return [Person(id=_ABSENT + name, name=name)]

        try:
            compiled = compile_rules(rules, lookup, source, line_of, runs=runs)
        except RuleResolutionError as err:
            problems += [f"{p} (account {account})" for p in err.problems]
            continue
        by_account[account] = tuple(
            kept for rule in compiled if (kept := _in_account(rule, account)) is not None
        )
        dropped[account] = {
            rule.name: why for rule in compiled if (why := account_problem(rule, account))
        }
    if problems:
        raise RuleResolutionError(problems)
    return AccountRules(by_account, found_in, dropped)


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
        for field in ("any", "all", "none"):
            for position, name in enumerate(getattr(rule.people, field)):
                if is_person_id(name) or allowed & set(found_in.get(name, ())):
                    continue
                path: KeyPath = ("rules", index, "people", field, position)
                line = line_of(path)
                where = f"{source if line is None else f'{source}:{line}'}: {format_key_path(path)}"
                elsewhere = [a for a in found_in.get(name, ()) if a not in allowed]
                if elsewhere:
                    problems.append(
                        f"{where}: {name!r} is only in account {', '.join(elsewhere)}, which "
                        f"this rule does not watch (accounts: {', '.join(rule.accounts)})"
                    )
                    continue
                similar = sorted(
                    {p.name for a in allowed for p in candidates[a].get(name, []) if p.name}
                )
                hint = f" (similar names: {', '.join(repr(n) for n in similar[:8])})"
                problems.append(
                    f"{where}: no person called {name!r} in any Immich account"
                    + (hint if similar else "")
                )
    return problems


def _in_account(rule: CompiledRule, account: str) -> CompiledRule | None:
    """The rule as it runs in this account, or None when it cannot match there."""
    if account_problem(rule, account) is not None:
        return None
    return replace(rule, any=_known(rule.any), none=_known(rule.none))


def _known(ids: frozenset[str]) -> frozenset[str]:
    return frozenset(i for i in ids if not i.startswith(_ABSENT))


def account_problem(rule: CompiledRule, account: str) -> str | None:
    """Why the rule cannot match assets read through ``account`` (None: it can), in the words
    ``explain`` shows. ``rule`` is compiled across the accounts (absent names kept)."""
    if rule.rule.accounts and account not in rule.rule.accounts:
        return f"the rule's accounts [{', '.join(rule.rule.accounts)}] do not include {account}"
    if missing := rule.all - _known(rule.all):
        names = ", ".join(sorted(i.removeprefix(_ABSENT) for i in missing))
        return f"{names}, whom the rule needs, is not a person of account {account}"
    if rule.rule.people.any and not _known(rule.any):
        return f"none of the rule's people is a person of account {account}"
    return None
