"""The configuration model: frozen values loaded from one YAML file.

The schema (what the file may contain) lives in ``sidecar/config.schema.json`` and nowhere else;
``sidecar.config.loader`` adds what a schema cannot say (cross-references between sections,
secrets from the environment or files) and turns the document into frozen dataclasses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Protocol

# Secret lives with the masking of secrets; the config model is where its readers look for it.
from sidecar.masking import Secret as Secret
from sidecar.masking import mask_url_credentials
from sidecar.messages.templates import Templates

KeyPath = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_key_path(path: KeyPath) -> str:
    """``('rules', 0, 'targets', 1)`` -> ``rules[0].targets[1]``; ``()`` -> ``(top level)``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text or "(top level)"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a config file, at a line (1-based) when one is known."""

    line: int | None
    where: str  # a key path like rules[0].targets, or what failed (e.g. "invalid YAML")
    message: str
    # Lines that show the spot (the file's line with a caret under it), printed after it.
    excerpt: tuple[str, ...] = field(default=(), compare=False)

    def render(self, source: str) -> str:
        location = f"{source}:{self.line}" if self.line is not None else source
        text = (
            f"{location}: {self.where}: {self.message}"
            if self.where
            else (f"{location}: {self.message}")
        )
        # Keys and values echoed from the file may hold newlines, control characters or lone
        # surrogates: escaped, a problem stays one printable line. A URL's password is hidden.
        return mask_url_credentials(
            "".join(
                ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                for ch in text
            )
        )


class ConfigError(Exception):
    """A config file that cannot be used; carries every problem found, sorted by line."""

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(
            sorted(set(problems), key=lambda p: (p.line or 0, p.where, p.message))
        )
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One ``file:line: path: message`` line per problem."""
        return [problem.render(self.source) for problem in self.problems]

    def report(self) -> list[str]:
        """What a person reads: each problem's line, then the file's lines it shows."""
        return [
            text
            for problem in self.problems
            for text in (problem.render(self.source), *problem.excerpt)
        ]


DEFAULT_ACCOUNT = "default"  # the one account of a config with a single immich.api_key


@dataclass(frozen=True)
class Account:
    """One Immich user the sidecar watches, by the API key of theirs it was given."""

    name: str  # the key under immich.accounts (DEFAULT_ACCOUNT for a single api_key)
    api_key: Secret
    line: int | None = field(default=None, compare=False)  # where its entry starts


@dataclass(frozen=True)
class ImmichSettings:
    url: str  # base URL without the trailing /api, e.g. http://immich-server:2283
    api_key: Secret  # the first account's
    external_url: str  # base for links in messages; defaults to url
    accounts: tuple[Account, ...] = ()  # in config order; the first is the default one

    @property
    def account_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.accounts) or (DEFAULT_ACCOUNT,)


@dataclass(frozen=True)
class UploadCommand:
    enabled: bool = True
    allowed_roles: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    album: str | None = None
    max_mb: int = 100
    account: str | None = None  # immich.accounts entry uploads go into (None: the first)


@dataclass(frozen=True)
class PersonCommand:
    enabled: bool = True


@dataclass(frozen=True)
class MemoriesCommand:
    enabled: bool = True
    allowed_roles: tuple[str, ...] = ()  # empty: everyone (the command only reads)
    allowed_channels: tuple[str, ...] = ()


# --- people links, claims and buttons (discord.members ...) ------------------------------


CLAIMS_MODES = ("approval", "open")


@dataclass(frozen=True)
class MembersSettings:
    """Links between Discord members and Immich people, and who may make and approve them."""

    links: tuple[tuple[str, int], ...] = ()  # (person name or id as written, Discord user id)
    approvers: tuple[int, ...] = ()  # role ids that may approve claims
    channel_id: int | None = None  # where claims wait for approval
    claims: str = "approval"  # or "open": a claim links at once
    favourite_roles: tuple[str, ...] = ()  # role names or ids that get the Favourite button

    @property
    def claims_possible(self) -> bool:
        """Whether /immich claim can ever make a link with this config."""
        return self.claims == "open" or bool(self.approvers and self.channel_id)


DEFAULT_INGEST_DESCRIPTION = "Uploaded by {member} in #{channel}"


@dataclass(frozen=True)
class IngestChannel:
    """``discord.ingest[]``: a channel whose members' attachments go into Immich."""

    channel_id: int
    album: str | None = None
    allowed_roles: tuple[str, ...] = ()  # resolved: the upload command's roles when unset
    description: str = DEFAULT_INGEST_DESCRIPTION


@dataclass(frozen=True)
class DiscordSettings:
    token: Secret | None = None
    ingest: tuple[IngestChannel, ...] = ()
    upload: UploadCommand = field(default_factory=UploadCommand)
    person: PersonCommand = field(default_factory=PersonCommand)
    memories: MemoriesCommand = field(default_factory=MemoriesCommand)
    members: MembersSettings = field(default_factory=MembersSettings)


@dataclass(frozen=True)
class PollSettings:
    interval: float = 120.0  # seconds
    lookback: float = 48 * 3600.0
    settle: float = 120.0
    backfill: float = 0.0
    # Fast polls of the people rules after new uploads (faces arrive seconds to minutes late):
    # every 5 s adds at most 5 s to a late face, and 3 minutes covers recognition on a home
    # server's CPU; 0 turns them off.
    fast_every: float = 5.0
    fast_for: float = 180.0


@dataclass(frozen=True)
class StateSettings:
    path: Path = Path("/data/state.db")


@dataclass(frozen=True)
class MetricsSettings:
    host: str = "0.0.0.0"  # noqa: S104 - the metrics port is meant to be scraped from outside
    port: int = 9187


PUSH_HEADER = "X-Immich-Sidecar-Secret"


@dataclass(frozen=True)
class PushSettings:
    """The Immich push endpoint (``push:``); absent from the settings when it is off."""

    secret: Secret
    host: str = "0.0.0.0"  # noqa: S104 - Immich reaches it from another container
    port: int = 9188
    header: str = PUSH_HEADER


@dataclass(frozen=True)
class UiSettings:
    """The status page (``ui:``); absent from the settings when it is off."""

    host: str = "127.0.0.1"
    port: int = 9189
    password: Secret | None = None  # HTTP Basic (any user name); required off loopback
    pictures: bool = False  # thumbnails of the last deliveries (only with a password)


@dataclass(frozen=True)
class QuietHours:
    """A daily window (local time, in the config's time zone) in which deliveries wait; they
    go out at its end, one summary per rule. ``start`` after ``end`` spans midnight."""

    start: time
    end: time


class TargetConfig(Protocol):
    """One target's settings. Each kind (``sidecar.targets.registry``) has its own frozen
    dataclass; what every kind has is a name and maybe quiet hours."""

    @property
    def name(self) -> str: ...

    @property
    def quiet_hours(self) -> QuietHours | None: ...


Target = TargetConfig  # the name the rest of the code has used

ASSET_TYPES = ("IMAGE", "VIDEO", "AUDIO", "OTHER")


@dataclass(frozen=True)
class PeopleFilter:
    """Person names or Immich person ids, as written in the config (resolved later)."""

    any: tuple[str, ...] = ()
    all: tuple[str, ...] = ()
    none: tuple[str, ...] = ()

    @property
    def requires_person(self) -> bool:
        """True when an asset can only match with someone recognised in it."""
        return bool(self.any or self.all)


@dataclass(frozen=True)
class AlbumFilter:
    """Album names or Immich album ids, as written in the config (resolved later).

    ``lines`` holds the config line of each entry, so that an unknown name found only when
    Immich is asked can still be reported as ``file:line``."""

    any: tuple[str, ...] = ()
    lines: tuple[int | None, ...] = field(default=(), compare=False)

    def line_of(self, position: int) -> int | None:
        return self.lines[position] if position < len(self.lines) else None


@dataclass(frozen=True)
class Batching:
    """How a burst of deliveries for one target is grouped (Discord issue)."""

    max_per_message: int = 10
    summary_over: int = 20


@dataclass(frozen=True)
class TargetWords:
    """A target's own ``locale`` and default ``messages`` (any kind of target)."""

    locale: str | None = None
    messages: Templates = field(default_factory=Templates)


@dataclass(frozen=True)
class Rule:
    name: str
    targets: tuple[str, ...]
    people: PeopleFilter = field(default_factory=PeopleFilter)
    asset_types: frozenset[str] = frozenset(ASSET_TYPES)
    mention_roles: tuple[int, ...] = ()
    mention_members: bool = False  # mention the linked members of the people in a post
    batching: Batching = field(default_factory=Batching)
    albums: AlbumFilter = field(default_factory=AlbumFilter)  # empty: fires on new uploads
    quiet_hours: QuietHours | None = None
    accounts: tuple[str, ...] = ()  # immich.accounts this rule watches (empty: all)
    messages: Templates = field(default_factory=Templates)  # the rule's own words


@dataclass(frozen=True)
class PeopleAliases:
    """``people_aliases``: the names one person goes by (one spelling per account's owner, say).
    A name of a group in a rule, post or link means the person of any of its names, in every
    account; names compare ignoring case."""

    groups: tuple[tuple[str, ...], ...] = ()  # each: the name written as the key, its aliases

    def spellings(self, name: str) -> tuple[str, ...]:
        """Every name ``name`` stands for: its group (the key first), or itself alone."""
        wanted = name.casefold()
        for group in self.groups:
            if any(spelling.casefold() == wanted for spelling in group):
                return group
        return (name,)

    def canonical(self, name: str) -> str:
        """The group's key for a name of a group, else the name itself."""
        return self.spellings(name)[0]

    def aliased(self, name: str) -> bool:
        return len(self.spellings(name)) > 1


POST_KINDS = ("memories", "birthdays", "digest")


@dataclass(frozen=True)
class Post:
    """A scheduled post: what to say (``kind``), when (``cron``, five fields, in the config's
    time zone) and where (``targets``)."""

    name: str
    kind: str  # one of POST_KINDS
    cron: str
    targets: tuple[str, ...]
    people: tuple[str, ...] = ()  # names or ids: memories showing / birthdays of these only
    max_pictures: int = 4  # per message
    max_per_day: int = 5  # memories: years per day at most
    # memories: each year its own message, or (the default) all years in one message
    one_message_per_year: bool = False
    rules: tuple[str, ...] = ()  # digest: the rules summarised
    accounts: tuple[str, ...] = ()  # memories, birthdays: the accounts asked (empty: all)
    locale: str | None = None  # the post's own language
    messages: Templates = field(default_factory=Templates)
    line: int | None = field(default=None, compare=False)  # where the post starts in the file


@dataclass(frozen=True)
class Settings:
    source: Path  # the file these settings were loaded from
    # sha256 of the file's bytes and its secret files' (config_digest): a reload with the same
    # hash changes nothing
    content_hash: str
    immich: ImmichSettings
    discord: DiscordSettings
    poll: PollSettings
    state: StateSettings
    metrics: MetricsSettings
    targets: Mapping[str, Target]
    rules: tuple[Rule, ...]
    timezone: str = "UTC"  # IANA name: cron schedules and "today" are read in it
    locale: str = "en"  # BCP 47: the language of the built-in texts, and their formats
    target_words: Mapping[str, TargetWords] = field(default_factory=dict)  # by target name
    posts: tuple[Post, ...] = ()
    push: PushSettings | None = None  # None: no push endpoint
    ui: UiSettings | None = None  # None: no status page
    people_aliases: PeopleAliases = field(default_factory=PeopleAliases)
    # Where each key path was written, for problems found after loading (a person name that
    # Immich does not know).
    lines: Mapping[KeyPath, int] = field(default_factory=dict, compare=False, repr=False)
    # the *_file secrets it read (their bytes are in content_hash)
    secret_files: tuple[Path, ...] = field(default=(), compare=False, repr=False)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of the key path, else of the nearest enclosing one that has a line."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(path)
