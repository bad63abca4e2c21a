"""From settings to what a poll watches: the rules' people and albums looked up in Immich,
the ``Watch`` a poll runs with, and each rule's presentation options."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from sidecar.config.model import Settings
from sidecar.engine.albums import resolve_albums
from sidecar.engine.dispatch import RuleOptions
from sidecar.engine.members import Link, config_links
from sidecar.engine.rules import (
    CompiledRule,
    RuleResolutionError,
    compile_rules,
    is_person_id,
    resolve_person,
)
from sidecar.engine.uploads import Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.models import Person


async def resolve_rules(client: ImmichClient, settings: Settings) -> tuple[CompiledRule, ...]:
    """Look every person name of the rules up in Immich (once per distinct name)."""
    names = {
        ref
        for rule in settings.rules
        for ref in (*rule.people.any, *rule.people.all, *rule.people.none)
        if not is_person_id(ref)
    }
    found: dict[str, list[Person]] = {}
    for name in sorted(names):
        # A person hidden in Immich's people view is still someone a rule may watch.
        found[name] = await client.search_person(name, with_hidden=True)
    source = str(settings.source)
    try:
        rules = compile_rules(
            settings.rules,
            lambda name: found.get(name, []),
            source=source,
            line_of=settings.line_of,
        )
    except RuleResolutionError as err:  # the albums' problems are reported with the people's
        return await resolve_albums(client, settings.rules, source, (), err.problems)
    return await resolve_albums(client, settings.rules, source, rules)


async def resolve_member_links(client: ImmichClient, settings: Settings) -> list[Link]:
    """The ``discord.members`` links, each name resolved as rule names are (exact, any case;
    a near miss refused with the candidates at file:line)."""
    references = settings.discord.members.links
    problems: list[str] = []
    resolved: dict[str, Person] = {}
    source = str(settings.source)
    for reference, _user in references:
        if is_person_id(reference):
            resolved[reference] = Person(id=reference.lower(), name="")
            continue
        candidates = tuple(await client.search_person(reference, with_hidden=True))
        line = settings.line_of(("discord", "members", reference))
        where = f"{source if line is None else f'{source}:{line}'}: discord.members.{reference}"
        person_id = resolve_person(reference, _answer(candidates), where, problems)
        if person_id is not None:
            person = next(p for p in candidates if p.id == person_id)
            resolved[reference] = person
    if problems:
        raise RuleResolutionError(problems)
    return config_links(references, resolved)


def _answer(candidates: Sequence[Person]) -> Callable[[str], Sequence[Person]]:
    """Immich's answer for one name, as ``resolve_person`` asks for candidates."""
    return lambda _name: candidates


def build_watch(settings: Settings, rules: tuple[CompiledRule, ...]) -> Watch:
    targets = {rule.name: rule.targets for rule in settings.rules}
    return Watch(
        rules=rules,
        targets_of=lambda name: targets.get(name, ()),
        lookback=timedelta(seconds=settings.poll.lookback),
        settle=timedelta(seconds=settings.poll.settle),
    )


def rule_options(settings: Settings) -> Callable[[str], RuleOptions]:
    options = {
        rule.name: RuleOptions(
            mention_roles=rule.mention_roles,
            batching=rule.batching,
            mention_members=rule.mention_members,
        )
        for rule in settings.rules
    }
    return lambda name: options.get(name, RuleOptions())
