"""Album names in the config resolved to the ids of albums the API key can see: the listings
that show every album (2.x lists owned and shared apart), a name matched ignoring case, an id
checked, and one problem per unknown or ambiguous name (run, dry-run and doctor say it alike).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from sidecar.config.model import Rule
from sidecar.engine.rules.matching import CompiledRule, NotInImmich, RuleResolutionError
from sidecar.immich.models import Album, AlbumSummary, ServerVersion, is_immich_id


class AlbumLister(Protocol):
    """The part of the Immich client that lists albums."""

    @property
    def server_version(self) -> ServerVersion | None: ...

    async def album_summaries(self, *, shared: bool | None = None) -> list[AlbumSummary]: ...


def is_v2(client: AlbumLister) -> bool:
    version = client.server_version
    return version is None or version.major < 3


async def list_albums(
    client: AlbumLister,
    shared_flags: Iterable[bool | None],
) -> dict[str, AlbumSummary]:
    """The albums of the given listings, merged by id (2.x lists owned and shared apart)."""
    found: dict[str, AlbumSummary] = {}
    for shared in shared_flags:
        for album in await client.album_summaries(shared=shared):
            found.setdefault(album.id, album)
    return found


def all_listings(client: AlbumLister) -> tuple[bool | None, ...]:
    """The listings that show every album the key's user can see."""
    return (None, True) if is_v2(client) else (None,)


NOT_VISIBLE = (
    "an album of that name may exist but not be visible to this key's user (owned by someone "
    "else and not shared with them)"
)


def resolve_album_ref(
    reference: str, known: Sequence[Album | AlbumSummary]
) -> tuple[str | None, str]:
    """The id of the album ``reference`` (a name, ignoring case, or an id) names among the albums
    the key can see, or None and the problem (run, dry-run and doctor say it alike)."""
    if is_immich_id(reference):
        for album in known:
            if album.id.lower() == reference.lower():
                return album.id, ""
        return None, NotInImmich(
            f"no album with id {reference} is visible to the API key (owned or shared with its "
            "user)",
            "album",
            reference,
        )
    exact = [a for a in known if a.name.casefold() == reference.casefold()]
    if len(exact) == 1:
        return exact[0].id, ""
    if exact:
        return None, (
            f"{len(exact)} albums are called {reference!r} "
            f"({', '.join(a.id for a in exact)}); rename one in Immich or use its id"
        )
    names = sorted({a.name for a in known if a.name})
    close = [
        n
        for n in names
        if reference.casefold() in n.casefold() or n.casefold() in reference.casefold()
    ] or names
    hint = f"albums: {', '.join(repr(n) for n in close[:8])}" if close else "the key sees no albums"
    return None, NotInImmich(
        f"no album called {reference!r} in Immich ({hint}); {NOT_VISIBLE}", "album", reference
    )


def resolve_album_refs(
    rules: Sequence[Rule],
    albums: Iterable[AlbumSummary],
    source: str,
    runs: Callable[[Rule], bool] = lambda _rule: True,
) -> tuple[dict[str, frozenset[str]], list[str]]:
    """Album ids per rule name, and one ``file:line: key: problem`` per unknown or ambiguous
    album name (a name matches ignoring case; an id must be one the key can see)."""
    known = list(albums)
    resolved: dict[str, frozenset[str]] = {}
    problems: list[str] = []
    for index, rule in enumerate(rules):
        if not runs(rule):
            continue
        ids: set[str] = set()
        for position, reference in enumerate(rule.albums.any):
            album_id, problem = resolve_album_ref(reference, known)
            if album_id is not None:
                ids.add(album_id)
            else:
                line = f"{album_where(source, rule, index, position)}: {problem}"
                problems.append(
                    NotInImmich(line, problem.kind, problem.name)
                    if isinstance(problem, NotInImmich)
                    else line
                )
        resolved[rule.name] = frozenset(ids)
    return resolved, problems


def album_where(source: str, rule: Rule, index: int, position: int) -> str:
    """``file:line: rules[i].albums.any[j]``, as every album problem starts."""
    line = rule.albums.line_of(position)
    return (f"{source}:{line}" if line is not None else source) + (
        f": rules[{index}].albums.any[{position}]"
    )


async def resolve_albums(
    client: AlbumLister,
    config: Sequence[Rule],
    source: str,
    rules: tuple[CompiledRule, ...],
    earlier: Sequence[str] = (),
    runs: Callable[[Rule], bool] = lambda _rule: True,
) -> tuple[CompiledRule, ...]:
    """``rules`` (compiled from ``config``) with their album names resolved to ids; raises
    RuleResolutionError with ``earlier`` problems (the people's) and the albums' together.
    Lists albums only when a rule that ``runs`` names one."""
    problems = list(earlier)
    if any(rule.albums.any for rule in config if runs(rule)):
        albums = await list_albums(client, all_listings(client))
        resolved, album_problems = resolve_album_refs(config, albums.values(), source, runs)
        problems += album_problems
        names = tuple((a.id, a.name) for a in albums.values())
        rules = tuple(
            replace(rule, albums=resolved.get(rule.name, frozenset()), album_names=names)
            for rule in rules
        )
    if problems:
        raise RuleResolutionError(problems)
    return rules
