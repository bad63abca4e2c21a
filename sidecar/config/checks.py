"""What the schema cannot say: names that must refer to each other, unique names, cron and time
zones, and what each target kind checks itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from sidecar.config.model import (
    KeyPath,
    Problem,
    format_key_path,
)
from sidecar.config.schema import suggest
from sidecar.config.yamlsource import LineMap
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


def post_trigger(cron: str, zone: ZoneInfo) -> CronTrigger:
    """APScheduler's own reading of a five-field cron; ValueError says what is wrong."""
    fields = cron.split()
    # APScheduler reads a weekday number as 0 = Monday, cron as 0 = Sunday: a number would
    # silently post on the wrong day, so only names are accepted there.
    if len(fields) == 5 and re.search(r"\d", fields[4]):
        raise ValueError(
            f"write the weekday ('{fields[4]}') with names like mon-fri or sun: "
            "cron and the scheduler disagree on what 0 means"
        )
    return CronTrigger.from_crontab(cron, timezone=zone)


def post_problems(
    data: dict[str, Any],
    lines: LineMap,
    environ: Mapping[str, str],
) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    posts = data.get("posts")
    posts = posts if isinstance(posts, list) else []
    name = timezone_name(data, environ)
    zone = zone_of(name)
    if zone is None:
        if isinstance(data.get("timezone"), str):
            add(("timezone",), f"'{name}' is not an IANA time zone (e.g. Europe/Paris or UTC)")
        elif posts:
            add(
                ("timezone",),
                f"the TZ environment variable ('{name}') is not an IANA time "
                "zone; set timezone: in the config (e.g. Europe/Paris or UTC)",
            )
        zone = ZoneInfo("UTC")
    targets = data.get("targets")
    target_names = list(targets) if isinstance(targets, dict) else []
    rules = data.get("rules")
    rule_names = (
        [r.get("name") for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []
    )
    first_use: dict[str, int] = {}
    for index, post in enumerate(posts):
        if not isinstance(post, dict):
            continue
        post_name = post.get("name")
        if isinstance(post_name, str):
            if post_name in first_use:
                add(
                    ("posts", index, "name"),
                    f"post name '{post_name}' is already used by posts[{first_use[post_name]}]",
                )
            first_use.setdefault(post_name, index)
        cron = post.get("cron")
        if isinstance(cron, str) and cron:
            try:
                post_trigger(cron, zone)
            except ValueError as err:
                add(
                    ("posts", index, "cron"), f'{err} (expected a five-field cron like "0 9 * * *")'
                )
        wanted = post.get("targets")
        for position, target in enumerate(wanted if isinstance(wanted, list) else []):
            if isinstance(target, str) and isinstance(targets, dict) and target not in targets:
                add(
                    ("posts", index, "targets", position),
                    f"'{target}' is not a defined target{suggest(target, target_names)}",
                )
        kind = post.get("kind")
        summarised = post.get("rules")
        if kind == "digest" and summarised is None:
            add(("posts", index), "a digest needs rules: the rules it summarises")
        if kind != "digest" and summarised is not None:
            add(("posts", index, "rules"), "only a digest summarises rules")
        for position, rule in enumerate(summarised if isinstance(summarised, list) else []):
            if isinstance(rule, str) and rule not in rule_names:
                add(
                    ("posts", index, "rules", position),
                    f"'{rule}' is not a defined rule"
                    f"{suggest(rule, [r for r in rule_names if isinstance(r, str)])}",
                )
        if kind != "memories" and "one_message_per_year" in post:
            add(
                ("posts", index, "one_message_per_year"),
                "only memories posts have years to put in one message or several",
            )
        if kind == "digest" and "people" in post:
            add(("posts", index, "people"), "a digest has no people filter (its rules do)")
    return problems
