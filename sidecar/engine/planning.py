"""From settings to what a poll watches: the rules' people and albums looked up in Immich,
the ``Watch`` a poll runs with, and each rule's presentation options."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Protocol

from sidecar.config.messages import words_for
from sidecar.config.model import KeyPath, PeopleAliases, Rule, Settings, format_key_path
from sidecar.engine.accounts import Accounts, check_keys
from sidecar.engine.albums.resolve import (
    album_where,
    all_listings,
    list_albums,
    resolve_album_ref,
    resolve_albums,
)
from sidecar.engine.albums.watcher import AlbumClient
from sidecar.engine.dispatch.dispatcher import RuleOptions
from sidecar.engine.members import Link
from sidecar.engine.posts.accounts import PostSource
from sidecar.engine.rules.accounts import AccountRules, ambiguity, compile_across, person_names
from sidecar.engine.rules.matching import (
    NO_ALIASES,
    CompiledRule,
    RuleResolutionError,
    compile_rules,
    exact_people,
    is_person_id,
    resolve_people,
)
from sidecar.engine.uploads.passes import Watch
from sidecar.immich.client import ImmichClient
from sidecar.immich.errors import ImmichError, ImmichPermissionError
from sidecar.immich.models import Album, AlbumSummary, Person, is_immich_id


class PersonSearch(Protocol):
    async def search_person(self, name: str, *, with_hidden: bool = False) -> list[Person]: ...


class PeopleSearch:
    """Immich's answers for person names, each spelling (a name, or one of its aliases) asked
    once per account and look-up. Hidden people count: a person hidden in Immich's people
    view is still someone a rule may watch."""

    def __init__(self, aliases: PeopleAliases = NO_ALIASES) -> None:
        self._aliases = aliases
        self._asked: dict[tuple[int, str], list[Person]] = {}

    async def answers(self, client: PersonSearch, name: str) -> list[Person]:
        """Everyone Immich finds for the name and each of its aliases."""
        found: dict[str, Person] = {}
        for spelling in self._aliases.spellings(name):
            key = (id(client), spelling.casefold())
            if key not in self._asked:
                self._asked[key] = await client.search_person(spelling, with_hidden=True)
            found.update((p.id, p) for p in self._asked[key])
        return list(found.values())


async def resolve_rules(
    client: ImmichClient,
    settings: Settings,
    runs: Callable[[Rule], bool] = lambda _rule: True,
) -> tuple[CompiledRule, ...]:
    """Look every person name of the rules that ``runs`` up in Immich (once per distinct name),
    and their albums; the other rules are left out (off until the key allows them)."""
    names = person_names([rule for rule in settings.rules if runs(rule)])
    search = PeopleSearch(settings.people_aliases)
    found = {name: await search.answers(client, name) for name in names}
    source = str(settings.source)
    try:
        rules = compile_rules(
            settings.rules,
            lambda name: found.get(name, []),
            source=source,
            line_of=settings.line_of,
            runs=runs,
            aliases=settings.people_aliases,
        )
    except RuleResolutionError as err:  # the albums' problems are reported with the people's
        return await resolve_albums(client, settings.rules, source, (), err.problems, runs)
    return await resolve_albums(client, settings.rules, source, rules, runs=runs)


async def resolve_account_rules(
    accounts: Accounts,
    settings: Settings,
    runs: Callable[[Rule], bool] = lambda _rule: True,
    search: PeopleSearch | None = None,
    without_people: Collection[str] = (),
) -> AccountRules:
    """Check that no two keys are of one user, then look every person name of the rules that
    ``runs`` up in every account (each has its own people) and the albums across them. With
    several accounts, one Immich does not answer (down, its key refused) is left out, in
    ``unresolved``, and the others go on; ImmichError only when none answers. Names are not
    looked up in the accounts ``without_people`` (their keys lack person.read)."""
    failed: dict[str, ImmichError] = {}
    await check_keys(accounts, settings, failed)
    names = person_names([rule for rule in settings.rules if runs(rule)])
    search = search or PeopleSearch(settings.people_aliases)
    candidates: dict[str, dict[str, list[Person]]] = {}
    for account in accounts:
        if account.name in failed:
            continue
        if account.name in without_people:
            candidates[account.name] = {n: [] for n in names}
            continue
        try:
            candidates[account.name] = {n: await search.answers(account.client, n) for n in names}
        except ImmichPermissionError:
            raise  # a missing permission turns features off (engine.access), not the account
        except ImmichError as err:
            if len(accounts) == 1:
                raise
            failed[account.name] = err
    if not candidates:
        raise next(iter(failed.values()))
    unresolved = {name: str(err) for name, err in failed.items()}
    source = str(settings.source)
    client = accounts.albums(without=unresolved)
    try:
        compiled = compile_across(
            settings.rules,
            candidates,
            source,
            settings.line_of,
            runs,
            settings.people_aliases,
            {*unresolved, *without_people},  # not asked: a name may be theirs
        )
    except RuleResolutionError as err:  # the albums' problems are reported with the people's
        await resolve_albums(client, settings.rules, source, (), err.problems, runs)
        raise
    by_account = dict(compiled.by_account)
    if accounts.first.name not in unresolved:  # album rules run in the first account
        by_account[accounts.first.name] = await resolve_albums(
            client, settings.rules, source, compiled.first, runs=runs
        )
    return replace(compiled, by_account=by_account, unresolved=unresolved)


async def resolve_member_links(
    accounts: Accounts,
    settings: Settings,
    search: PeopleSearch | None = None,
    without: Collection[str] = (),
) -> tuple[list[Link], list[str]]:
    """The ``discord.members`` links: each name (or alias) resolved in every account as rule
    names are (exact, any case; a near miss refused with the candidates at file:line), to the
    person of that name in each account that has one. Also says which names mean several
    people in one account (each is linked). The accounts ``without`` are not asked (their
    names could not be looked up; they are linked once they are)."""
    aliases = settings.people_aliases
    search = search or PeopleSearch(aliases)
    problems: list[str] = []
    links: list[Link] = []
    notes: list[str] = []
    source = str(settings.source)
    for reference, user in settings.discord.members.links:
        if is_person_id(reference):
            links.append(Link(reference.lower(), "", user, "config"))
            continue
        asked = [a for a in accounts if a.name not in without]  # not: Immich did not answer
        answers = {a.name: await search.answers(a.client, reference) for a in asked}
        found = {a: exact_people(reference, answers[a], aliases) for a in answers}
        for account, people in found.items():
            links += [
                Link(p.id, p.name or reference, user, "config", account=account) for p in people
            ]
            if len(people) > 1:
                notes.append(ambiguity(reference, people, account if len(found) > 1 else ""))
        if not any(found.values()) and not without:  # else it may be a skipped account's
            line = settings.line_of(("discord", "members", reference))
            where = f"{source if line is None else f'{source}:{line}'}: discord.members.{reference}"
            everyone = [p for people in answers.values() for p in people]
            resolve_people(reference, _answer(everyone), where, problems, aliases)
    if problems:
        raise RuleResolutionError(problems)
    return links, notes


def _answer(candidates: Sequence[Person]) -> Callable[[str], Sequence[Person]]:
    """Immich's answers for one name, as ``resolve_people`` asks for candidates."""
    return lambda _name: candidates


def build_watch(
    settings: Settings,
    rules: tuple[CompiledRule, ...],
    off: Sequence[Rule] = (),
) -> Watch:
    """What one account's poll runs with; ``off``: the config's rules of that account that do
    not run because a feature they need is off (held where they stopped)."""
    targets = {rule.name: rule.targets for rule in settings.rules}
    return Watch(
        rules=rules,
        targets_of=lambda name: targets.get(name, ()),
        lookback=timedelta(seconds=settings.poll.lookback),
        settle=timedelta(seconds=settings.poll.settle),
        held=tuple(rule.name for rule in off if not rule.albums.any),
        albums_held=any(rule.albums.any for rule in off),
    )


def rules_off(settings: Settings, account: str, runs: Callable[[Rule], bool]) -> list[Rule]:
    """The config's rules of ``account`` that ``runs`` refuses (a feature they need is off)."""
    return [
        rule
        for rule in settings.rules
        if not runs(rule) and (not rule.accounts or account in rule.accounts)
    ]


def rule_options(settings: Settings) -> Callable[[str], RuleOptions]:
    options = {
        post.name: RuleOptions(
            words={t: words_for(settings, t, post.messages, post.locale) for t in post.targets}
        )
        for post in settings.posts
    }
    options.update(
        {
            rule.name: RuleOptions(
                mention_roles=rule.mention_roles,
                batching=rule.batching,
                mention_members=rule.mention_members,
                words={t: words_for(settings, t, rule.messages) for t in rule.targets},
            )
            for rule in settings.rules
        }
    )
    return lambda name: options.get(name, RuleOptions())


# -- every name the config gives, for doctor ------------------------------------------------------


@dataclass(frozen=True)
class NameRef:
    """A person or album the config names, where it first does (``file:line: key``)."""

    kind: str  # "person", "album" (an album rule) or "upload album"
    name: str
    where: str
    # Each place that names it with ``accounts:`` narrowed: (file:line: key, those accounts).
    narrowed: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True)
class Resolved:
    """What Immich said of one name: its id, or the problem in the words ``run`` uses."""

    ref: NameRef
    immich_id: str | None
    problem: str = ""
    ids: tuple[str, ...] = ()  # a person name: every person it means (usually one)


def name_refs(settings: Settings, *, bot: bool) -> list[NameRef]:
    """Every name ``run`` looks up, in config order, each once: the rules' people and albums,
    the posts' people, then the upload album (only where the bot runs its commands)."""
    source = str(settings.source)

    def where(path: KeyPath, line: int | None = None) -> str:
        line = settings.line_of(path) if line is None else line
        return (f"{source}:{line}" if line is not None else source) + f": {format_key_path(path)}"

    refs: list[NameRef] = []
    for index, rule in enumerate(settings.rules):
        for field in ("any", "all", "none"):
            for position, name in enumerate(getattr(rule.people, field)):
                if not is_person_id(name):
                    at = where(("rules", index, "people", field, position))
                    refs.append(NameRef("person", name, at, _narrowed(at, rule.accounts)))
        for position, name in enumerate(rule.albums.any):
            refs.append(NameRef("album", name, album_where(source, rule, index, position)))
    for index, post in enumerate(settings.posts):
        for position, name in enumerate(post.people):
            if not is_person_id(name):
                at = where(("posts", index, "people", "any", position))
                refs.append(NameRef("person", name, at, _narrowed(at, post.accounts)))
    upload = settings.discord.upload
    if bot and upload.enabled and upload.album and not is_immich_id(upload.album):
        refs.append(
            NameRef("upload album", upload.album, where(("discord", "commands", "upload", "album")))
        )
    for index, channel in enumerate(settings.discord.ingest if bot else ()):
        if channel.album and not is_immich_id(channel.album):
            refs.append(
                NameRef("upload album", channel.album, where(("discord", "ingest", index, "album")))
            )
    unique: dict[tuple[str, str], NameRef] = {}
    for ref in refs:
        key = (ref.kind, ref.name.casefold())
        first = unique.setdefault(key, ref)
        if first is not ref:
            unique[key] = replace(first, narrowed=first.narrowed + ref.narrowed)
    return list(unique.values())


def _narrowed(where: str, accounts: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return ((where, accounts),) if accounts else ()


async def resolve_name(
    client: PostSource,
    ref: NameRef,
    albums: Callable[[str], Awaitable[Sequence[Album | AlbumSummary]]],
    aliases: PeopleAliases = NO_ALIASES,
) -> Resolved:
    """Look one name up as ``run`` does; ``albums(kind)`` lists the albums a kind of album name
    is looked up among. Raises ImmichError when Immich cannot answer."""
    if ref.kind == "person":
        candidates = await PeopleSearch(aliases).answers(client, ref.name)
        problems: list[str] = []
        found = resolve_people(ref.name, lambda _name: candidates, ref.where, problems, aliases)
        problem = problems[0].removeprefix(f"{ref.where}: ") if problems else ""
        return Resolved(ref, found[0] if found else None, problem, found)
    album_id, problem = resolve_album_ref(ref.name, await albums(ref.kind))
    return Resolved(ref, album_id, problem)


async def rule_albums(client: AlbumClient) -> list[AlbumSummary]:
    """Every album the key's user can see, as album rules are resolved."""
    return list((await list_albums(client, all_listings(client))).values())
