"""Watch rules, compiled against Immich's people, and the pure matching of assets to rules.

Nothing here does I/O: person names are resolved from a list of candidates that the caller
fetched, and matching looks only at the asset as Immich returned it (people inline).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.config.model import ASSET_TYPES, KeyPath, Rule, format_key_path
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
    # person id -> the name the config gives it (for the reasons a rule gives)
    labels: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    # album id -> its name, as resolved
    album_names: tuple[tuple[str, str], ...] = field(default=(), compare=False)

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

    def label(self, person_id: str, asset: Asset | None = None) -> str:
        """A person as the config names them (else as Immich does on ``asset``, else the id)."""
        for known, name in self.labels:
            if known == person_id:
                return name
        named = [p.name for p in (asset.people if asset else ()) if p.id == person_id and p.name]
        return named[0] if named else person_id

    def album_label(self, album_id: str) -> str:
        return next((name for known, name in self.album_names if known == album_id), album_id)


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


@dataclass(frozen=True)
class Miss:
    """Why an asset does not satisfy a rule, in the words ``explain`` shows."""

    rule: CompiledRule
    asset: Asset
    reason: str  # e.g. "Bob is not recognised in it (faces: Alice, unnamed ×1)"
    # A watched person is missing: Immich may still recognise them (faces come late), so the
    # rule looks at the asset again while it is inside the look-back window.
    faces_may_come: bool = False


class RuleResolutionError(Exception):
    """A person named in a rule is unknown to Immich or ambiguous."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)

    def lines(self) -> list[str]:
        return list(self.problems)


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
        labels: dict[str, str] = {}
        for part in ("any", "all", "none"):
            ids = set()
            for position, reference in enumerate(getattr(rule.people, part)):
                path: KeyPath = ("rules", index, "people", part, position)
                line = line_of(path)
                location = source if line is None else f"{source}:{line}"
                where = f"{location}: {format_key_path(path)}"
                person_id = resolve_person(reference, candidates_for, where, problems)
                if person_id is not None:
                    ids.add(person_id)
                    labels.setdefault(person_id, reference)
            resolved[part] = frozenset(ids)
        compiled.append(
            CompiledRule(
                rule,
                resolved["any"],
                resolved["all"],
                resolved["none"],
                labels=tuple(labels.items()),
            )
        )
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
    problems.append(f"{where}: no person called {reference!r} in Immich{hint}")
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


HIDDEN_FROM_TIMELINE = {
    "archive": "it is archived",
    "hidden": "it is hidden",
    "locked": "it is in the locked folder",
}


def check(rule: CompiledRule, asset: Asset) -> Match | Miss:
    """Whether ``asset`` satisfies ``rule``, and why (or why not): the one place that decides."""
    if asset.is_trashed:
        return Miss(rule, asset, "it is in the trash (only assets on the timeline are posted)")
    if not asset.on_timeline:
        state = HIDDEN_FROM_TIMELINE.get(asset.visibility, f"its visibility is {asset.visibility}")
        return Miss(rule, asset, f"{state} (only assets on the timeline are posted)")
    if asset.type not in rule.rule.asset_types:
        wanted = ", ".join(t for t in ASSET_TYPES if t in rule.rule.asset_types)
        return Miss(rule, asset, f"{asset.type} is not in asset_types [{wanted}]")
    present = asset.person_ids
    if rule.any and not rule.any & present:
        wanted = _names(rule, rule.any, asset)
        one = len(rule.any) == 1
        why = (
            f"{wanted} is not recognised in it" if one else f"none of {wanted} is recognised in it"
        )
        return Miss(rule, asset, f"{why} ({faces(asset)})", faces_may_come=True)
    if rule.all and not rule.all <= present:
        missing = rule.all - present
        verb = "is" if len(missing) == 1 else "are"
        why = f"{_names(rule, missing, asset)} {verb} not recognised in it ({faces(asset)})"
        return Miss(rule, asset, why, faces_may_come=True)
    if excluded := rule.none & present:
        verb = "is" if len(excluded) == 1 else "are"
        why = f"{_names(rule, excluded, asset)} {verb} in it (none: {_names(rule, rule.none)})"
        return Miss(rule, asset, why)
    watched = rule.watched_person_ids
    names = tuple(sorted(p.name or "unnamed person" for p in asset.people if p.id in watched))
    return Match(rule, asset, names)


def match(rule: CompiledRule, asset: Asset) -> Match | None:
    """The reason ``asset`` satisfies ``rule``, or None."""
    verdict = check(rule, asset)
    return verdict if isinstance(verdict, Match) else None


def faces(asset: Asset) -> str:
    """The faces Immich recognised in an asset: ``faces: Alice, unnamed ×1``."""
    named = sorted({p.name for p in asset.people if p.name}, key=str.casefold)
    unnamed = sum(1 for p in asset.people if not p.name) + asset.unassigned_faces
    shown = [*named, *([f"unnamed ×{unnamed}"] if unnamed else [])]
    return f"faces: {', '.join(shown)}" if shown else "no faces recognised"


def _names(rule: CompiledRule, ids: frozenset[str], asset: Asset | None = None) -> str:
    return ", ".join(sorted((rule.label(i, asset) for i in ids), key=str.casefold))


def before_baseline(asset: Asset, since: datetime | None) -> bool:
    """Uploaded before the rule was first seen: a rule added later does not announce history."""
    return since is not None and asset.created_at < since


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
            if before_baseline(asset, baselines.get(rule.name)):
                continue
            hit = match(rule, asset)
            if hit is not None:
                found.append(hit)
    return found
