"""Watch rules, compiled against Immich's people, and the pure matching of assets to rules.

Nothing here does I/O: person names are resolved from a list of candidates that the caller
fetched, and matching looks only at the asset as Immich returned it (people inline).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sidecar.config.model import KeyPath, Rule, format_key_path
from sidecar.immich.models import Asset, Person, is_immich_id


def is_person_id(reference: str) -> bool:
    """A people entry in the config is an Immich person id when it is a UUID, else a name."""
    return is_immich_id(reference)


@dataclass(frozen=True)
class CompiledRule:
    """A rule with its people resolved to Immich person ids."""

    rule: Rule
    any: frozenset[str] = frozenset()
    all: frozenset[str] = frozenset()
    none: frozenset[str] = frozenset()
    albums: frozenset[str] = frozenset()  # album ids: the rule fires on additions to them

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def watches_albums(self) -> bool:
        """An album rule fires when an asset is added to an album, not when it is uploaded."""
        return bool(self.rule.albums.any)

    @property
    def requires_person(self) -> bool:
        """Only assets with a watched person recognised in them can match: such a rule stays
        interested in an asset for the whole look-back window (faces are recognised late)."""
        return bool(self.any or self.all)

    @property
    def watched_person_ids(self) -> frozenset[str]:
        """People whose recognition can make this rule match (the poller asks Immich for them)."""
        return self.any | self.all


@dataclass(frozen=True)
class Match:
    """Why an asset satisfies a rule, for logs and the dry run."""

    rule: CompiledRule
    asset: Asset
    people: tuple[str, ...]  # the watched people found on the asset, by name

    def explain(self) -> str:
        why = f"{', '.join(self.people)} recognised" if self.people else "no people filter"
        if self.rule.none:
            why += ", none of the excluded people"
        return f"{why}; type {self.asset.type}"


class NotInImmich(str):
    """A problem line about a name Immich does not know (yet): a person, an album or an account
    the config names. Naming the person or making the album in Immich fixes it as well as
    editing the file does, so a reload refused only for these waits for Immich
    (``engine.reload``) instead of waiting for the file to change. A plain ``str`` everywhere
    else: problem lists carry it through every merge unchanged."""

    kind: str  # "person", "album" or "account"
    name: str

    def __new__(cls, text: str, kind: str, name: str) -> NotInImmich:
        line = super().__new__(cls, text)
        line.kind = kind
        line.name = name
        return line


class RuleResolutionError(Exception):
    """A person named in a rule is unknown to Immich or ambiguous."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)

    def lines(self) -> list[str]:
        return list(self.problems)

    @property
    def waiting_on(self) -> tuple[NotInImmich, ...]:
        """The names Immich lacks, when they are all that is wrong (else empty): the config is
        right as soon as Immich has them."""
        if self.problems and all(isinstance(p, NotInImmich) for p in self.problems):
            return tuple(p for p in self.problems if isinstance(p, NotInImmich))
        return ()


def compile_rules(
    rules: Iterable[Rule],
    candidates_for: Callable[[str], Sequence[Person]],
    source: str = "config",
    line_of: Callable[[KeyPath], int | None] = lambda _path: None,
    runs: Callable[[Rule], bool] = lambda _rule: True,
) -> tuple[CompiledRule, ...]:
    """Resolve every person name in the rules to one Immich person id.

    ``candidates_for(name)`` returns the people Immich finds for a name (its person search is
    fuzzy); a name must match exactly one of them, ignoring case (and accents if need be).
    All problems are collected and raised together, each as ``source:line: key: problem``
    (``source: key: problem`` when ``line_of`` does not know the line). Rules that do not
    ``run`` are left out.
    """
    problems: list[str] = []
    compiled = []
    for index, rule in enumerate(rules):
        if not runs(rule):  # off for now (the key lacks a permission it needs)
            continue
        resolved: dict[str, frozenset[str]] = {}
        for field in ("any", "all", "none"):
            ids = set()
            for position, reference in enumerate(getattr(rule.people, field)):
                path: KeyPath = ("rules", index, "people", field, position)
                line = line_of(path)
                location = source if line is None else f"{source}:{line}"
                where = f"{location}: {format_key_path(path)}"
                person_id = resolve_person(reference, candidates_for, where, problems)
                if person_id is not None:
                    ids.add(person_id)
            resolved[field] = frozenset(ids)
        compiled.append(CompiledRule(rule, resolved["any"], resolved["all"], resolved["none"]))
    if problems:
        raise RuleResolutionError(problems)
    return tuple(compiled)


def resolve_person(
    reference: str,
    candidates_for: Callable[[str], Sequence[Person]],
    where: str,
    problems: list[str],
) -> str | None:
    """The Immich person id ``reference`` names, or None with its problem appended to
    ``problems`` as ``where: problem`` (run, the posts and doctor say it alike)."""
    if is_person_id(reference):
        return reference.lower()
    candidates = candidates_for(reference)
    exact = exact_people(reference, candidates)
    if len(exact) == 1:
        return exact[0].id
    if len(exact) > 1:
        ids = ", ".join(p.id for p in exact)
        problems.append(
            f"{where}: {len(exact)} people in Immich are called {reference!r} ({ids}); "
            "name them apart in Immich or use the person id"
        )
        return None
    names = sorted({p.name for p in candidates if p.name})
    hint = f" (similar names: {', '.join(repr(n) for n in names[:8])})" if names else ""
    problems.append(
        NotInImmich(f"{where}: no person called {reference!r} in Immich{hint}", "person", reference)
    )
    return None


def exact_people(reference: str, candidates: Sequence[Person]) -> list[Person]:
    """The candidates a rule's name means. Immich's search is fuzzy ("Caroll" finds Carol): only
    an exact name counts, ignoring case, and then accents ("Zoe" is Zoë) when no name is the same
    but for case."""
    exact = [p for p in candidates if p.name.casefold() == reference.casefold()]
    if not exact:
        exact = [p for p in candidates if _fold(p.name) == _fold(reference)]
    return exact


def _fold(name: str) -> str:
    """A name without case or accents, as Immich compares names (``f_unaccent``)."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def match(rule: CompiledRule, asset: Asset) -> Match | None:
    """The reason ``asset`` satisfies ``rule``, or None."""
    if not asset.on_timeline or asset.type not in rule.rule.asset_types:
        return None
    present = asset.person_ids
    if rule.any and not rule.any & present:
        return None
    if rule.all and not rule.all <= present:
        return None
    if rule.none & present:
        return None
    watched = rule.watched_person_ids
    names = tuple(sorted(p.name or "unnamed person" for p in asset.people if p.id in watched))
    return Match(rule, asset, names)


def matches_for(
    rules: Iterable[CompiledRule],
    assets: Iterable[Asset],
    baselines: Mapping[str, datetime],
) -> list[Match]:
    """Every (rule, asset) pair that matches, skipping assets created before the rule's baseline
    (so a rule added later does not announce history)."""
    found = []
    for asset in assets:
        for rule in rules:
            since = baselines.get(rule.name)
            if since is not None and asset.created_at < since:
                continue
            hit = match(rule, asset)
            if hit is not None:
                found.append(hit)
    return found
