"""Watch rules, compiled against Immich's people, and the pure matching of assets to rules.

Nothing here does I/O: person names are resolved from a list of candidates that the caller
fetched, and matching looks only at the asset as Immich returned it (people inline).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sidecar.config.model import ASSET_TYPES, KeyPath, PeopleAliases, Rule, format_key_path
from sidecar.immich.models import Asset, Person, is_immich_id

NO_ALIASES = PeopleAliases()


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
    # Each ``all:`` name's people: a name may stand for several (two people of one name, or a
    # name and its aliases), any of whom counts. Empty: each id of ``all`` on its own.
    all_groups: tuple[frozenset[str], ...] = ()
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

    @property
    def required_groups(self) -> tuple[frozenset[str], ...]:
        """What ``all:`` needs: one person of each group recognised."""
        return self.all_groups or tuple(frozenset({i}) for i in sorted(self.all))

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
    aliases: PeopleAliases = NO_ALIASES,
) -> tuple[CompiledRule, ...]:
    """Resolve every person name in the rules to the Immich people it names.

    ``candidates_for(name)`` returns the people Immich finds for a name and its aliases (its
    person search is fuzzy); a name means the candidates called exactly that (or one of its
    aliases), ignoring case (and accents if need be): usually one person, every one of them
    when a name is given twice in Immich (said by the caller: ``AccountRules.ambiguities``). A name
    that means no one is a problem; all problems are raised together, each as
    ``source:line: key: problem`` (``source: key: problem`` when ``line_of`` does not know the
    line). Rules that do not ``run`` are left out.
    """
    problems: list[str] = []
    compiled = []
    for index, rule in enumerate(rules):
        if not runs(rule):  # off for now (the key lacks a permission it needs)
            continue
        resolved: dict[str, list[frozenset[str]]] = {}
        labels: dict[str, str] = {}
        for part in ("any", "all", "none"):
            groups = []
            for position, reference in enumerate(getattr(rule.people, part)):
                path: KeyPath = ("rules", index, "people", part, position)
                line = line_of(path)
                location = source if line is None else f"{source}:{line}"
                where = f"{location}: {format_key_path(path)}"
                ids = resolve_people(reference, candidates_for, where, problems, aliases)
                if ids:
                    groups.append(frozenset(ids))
                    for person_id in ids:
                        labels.setdefault(person_id, reference)
            resolved[part] = groups
        compiled.append(
            CompiledRule(
                rule,
                frozenset().union(*resolved["any"]),
                frozenset().union(*resolved["all"]),
                frozenset().union(*resolved["none"]),
                all_groups=tuple(resolved["all"]),
                labels=tuple(labels.items()),
            )
        )
    if problems:
        raise RuleResolutionError(problems)
    return tuple(compiled)


def resolve_people(
    reference: str,
    candidates_for: Callable[[str], Sequence[Person]],
    where: str,
    problems: list[str],
    aliases: PeopleAliases = NO_ALIASES,
) -> tuple[str, ...]:
    """The Immich person ids ``reference`` names (an id itself, or every person called so or
    by one of its aliases), or none with its problem appended to ``problems`` as
    ``where: problem`` (run, the posts and doctor say it alike)."""
    if is_person_id(reference):
        return (reference.lower(),)
    candidates = candidates_for(reference)
    exact = exact_people(reference, candidates, aliases)
    if exact:
        return tuple(dict.fromkeys(p.id for p in exact))
    names = sorted({p.name for p in candidates if p.name})
    hint = f" (similar names: {', '.join(repr(n) for n in names[:8])})" if names else ""
    problems.append(
        NotInImmich(f"{where}: no person called {reference!r} in Immich{hint}", "person", reference)
    )
    return ()


def exact_people(
    reference: str, candidates: Sequence[Person], aliases: PeopleAliases = NO_ALIASES
) -> list[Person]:
    """The candidates a config's name means. Immich's search is fuzzy ("Caroll" finds Carol):
    only an exact name counts (the name or one of its aliases), ignoring case, and then accents
    ("Zoe" is Zoë) when no name is the same but for case. Each person once."""
    spellings = aliases.spellings(reference)
    wanted = {name.casefold() for name in spellings}
    exact = [p for p in candidates if p.name.casefold() in wanted]
    if not exact:
        folded = {_fold(name) for name in spellings}
        exact = [p for p in candidates if _fold(p.name) in folded]
    return list({p.id: p for p in exact}.values())


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
    if lacking := [group for group in rule.required_groups if not group & present]:
        missing = frozenset().union(*lacking)
        verb = "is" if len(lacking) == 1 else "are"
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
    return ", ".join(sorted({rule.label(i, asset) for i in ids}, key=str.casefold))


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
