"""What the schema cannot say: names that must refer to each other, unique names, cron and time
zones, and what each target kind checks itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sidecar.config.cron import EXAMPLE
from sidecar.config.cron import post_trigger as post_trigger  # its former home: still here
from sidecar.config.model import (
    KeyPath,
    Problem,
    format_key_path,
)
from sidecar.config.schema import suggest
from sidecar.config.yamlfile.source import LineMap
from sidecar.targets.registry import kind_for_spec

# --- what the schema cannot say --------------------------------------------------------------


def cross_field_problems(data: dict[str, Any], lines: LineMap) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    targets = data.get("targets")
    target_names = list(targets) if isinstance(targets, dict) else []
    rules = data.get("rules")
    first_use: dict[str, int] = {}
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if not isinstance(rule, dict):
            continue
        name = rule.get("name")
        if isinstance(name, str):
            if name in first_use:
                earlier = first_use[name]
                add(
                    ("rules", index, "name"),
                    f"rule name '{name}' is already used by rules[{earlier}]",
                )
            first_use.setdefault(name, index)
        wanted = rule.get("targets")
        for position, target in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(target, str) and isinstance(targets, dict) and target not in targets:
                message = f"'{target}' is not a defined target{suggest(target, target_names)}"
                add(("rules", index, "targets", position), message)

    problems += account_problems(data, lines)
    for name, target in targets.items() if isinstance(targets, dict) else []:
        kind = kind_for_spec(target) if isinstance(target, dict) else None
        for where, message in kind.problems(target, data) if kind is not None else ():
            add(("targets", name, *where), message)
    return problems


def account_problems(data: dict[str, Any], lines: LineMap) -> list[Problem]:
    """Every ``accounts:`` of a rule or post, and the upload account, name an immich account."""
    immich = data.get("immich")
    configured = immich.get("accounts") if isinstance(immich, dict) else None
    known = list(configured) if isinstance(configured, dict) else ["default"]
    uses: list[tuple[KeyPath, object]] = []
    early: list[Problem] = []
    for section in ("rules", "posts"):
        entries = data.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            names = entry.get("accounts") if isinstance(entry, dict) else None
            if section == "rules" and names is not None and entry.get("albums"):
                path: KeyPath = ("rules", index, "accounts")
                message = (
                    "does not apply to album rules: an album is read through whichever "
                    "account can read it"
                )
                early.append(Problem(lines.line_of(path), format_key_path(path), message))
            for position, name in enumerate(names if isinstance(names, list) else []):
                uses.append(((section, index, "accounts", position), name))
    discord = data.get("discord")
    commands = discord.get("commands") if isinstance(discord, dict) else None
    upload = commands.get("upload") if isinstance(commands, dict) else None
    if isinstance(upload, dict) and "account" in upload:
        uses.append((("discord", "commands", "upload", "account"), upload["account"]))
    return early + [
        Problem(
            lines.line_of(path),
            format_key_path(path),
            f"'{name}' is not an account in immich.accounts{suggest(name, known)}"
            if isinstance(configured, dict)
            else f"'{name}' is not an account: with a single immich.api_key the one account "
            "is 'default'",
        )
        for path, name in uses
        if isinstance(name, str) and name not in known
    ]


def timezone_name(data: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The config's ``timezone``, else the TZ environment variable (a leading ':' dropped),
    else UTC."""
    configured = data.get("timezone")
    if isinstance(configured, str):
        return configured
    return environ.get("TZ", "").lstrip(":") or "UTC"


def zone_of(name: str) -> ZoneInfo | None:
    """The IANA time zone of that name, or None when there is none."""
    if not name or name.startswith(("/", ".")) or ".." in name:
        return None
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return None


# Records one problem at a key path.
_Add = Callable[[KeyPath, str], None]


def post_problems(
    data: dict[str, Any],
    lines: LineMap,
    environ: Mapping[str, str],
) -> list[Problem]:
    """What the schema cannot say about ``posts:``: the time zone their crons run in, unique
    names, crons APScheduler reads as cron does, targets that exist, and what each kind of post
    takes (a digest its rules, memories their years)."""
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    posts = data.get("posts")
    posts = posts if isinstance(posts, list) else []
    zone = _posts_zone(data, environ, add, any_posts=bool(posts))
    targets = data.get("targets")
    rules = data.get("rules")
    rule_names = [
        r["name"]
        for r in (rules if isinstance(rules, list) else [])
        if isinstance(r, dict) and isinstance(r.get("name"), str)
    ]
    first_use: dict[str, int] = {}
    for index, post in enumerate(posts):
        if not isinstance(post, dict):
            continue
        at: KeyPath = ("posts", index)
        _check_post_name(post, index, first_use, add)
        _check_post_cron(post, at, zone, add)
        _check_post_targets(post, at, targets, add)
        _check_digest(post, at, rule_names, add)
        _check_memories(post, at, add)
    return problems


def _posts_zone(
    data: Mapping[str, Any], environ: Mapping[str, str], add: _Add, *, any_posts: bool
) -> ZoneInfo:
    """The zone the posts' crons run in; UTC (and a problem) when the name is no zone. A bad TZ
    matters only when there are posts to schedule."""
    name = timezone_name(data, environ)
    zone = zone_of(name)
    if zone is not None:
        return zone
    if isinstance(data.get("timezone"), str):
        add(("timezone",), f"'{name}' is not an IANA time zone (e.g. Europe/Paris or UTC)")
    elif any_posts:
        add(
            ("timezone",),
            f"the TZ environment variable ('{name}') is not an IANA time "
            "zone; set timezone: in the config (e.g. Europe/Paris or UTC)",
        )
    return ZoneInfo("UTC")


def _check_post_name(
    post: Mapping[str, Any], index: int, first_use: dict[str, int], add: _Add
) -> None:
    name = post.get("name")
    if not isinstance(name, str):
        return
    if name in first_use:
        add(
            ("posts", index, "name"),
            f"post name '{name}' is already used by posts[{first_use[name]}]",
        )
    first_use.setdefault(name, index)


def _check_post_cron(post: Mapping[str, Any], at: KeyPath, zone: ZoneInfo, add: _Add) -> None:
    cron = post.get("cron")
    if not isinstance(cron, str) or not cron:
        return
    try:
        post_trigger(cron, zone)
    except ValueError as err:
        add((*at, "cron"), f"{err} (expected five fields like {EXAMPLE})")


def _check_post_targets(post: Mapping[str, Any], at: KeyPath, targets: object, add: _Add) -> None:
    if not isinstance(targets, dict):
        return
    wanted = post.get("targets")
    for position, target in enumerate(wanted if isinstance(wanted, list) else []):
        if isinstance(target, str) and target not in targets:
            add(
                (*at, "targets", position),
                f"'{target}' is not a defined target{suggest(target, list(targets))}",
            )


def _check_digest(post: Mapping[str, Any], at: KeyPath, rule_names: list[str], add: _Add) -> None:
    """A digest summarises rules (that exist) and has no people of its own; no other kind
    summarises rules."""
    digest = post.get("kind") == "digest"
    summarised = post.get("rules")
    if digest and summarised is None:
        add(at, "a digest needs rules: the rules it summarises")
    if not digest and summarised is not None:
        add((*at, "rules"), "only a digest summarises rules")
    for position, rule in enumerate(summarised if isinstance(summarised, list) else []):
        if isinstance(rule, str) and rule not in rule_names:
            add(
                (*at, "rules", position),
                f"'{rule}' is not a defined rule{suggest(rule, rule_names)}",
            )
    if digest and "people" in post:
        add((*at, "people"), "a digest has no people filter (its rules do)")


def _check_memories(post: Mapping[str, Any], at: KeyPath, add: _Add) -> None:
    if post.get("kind") != "memories" and "one_message_per_year" in post:
        add(
            (*at, "one_message_per_year"),
            "only memories posts have years to put in one message or several",
        )
