"""The config file ``init`` writes, from what Immich has (pure): comments that say where it
came from and what the key lacks, the settings for the place it runs, a console target and a
commented Discord webhook, and one ready-to-uncomment rule per named person and album."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

from sidecar.immich.permissions import KEY_SETTINGS_HINT
from sidecar.init.inventory import Inventory, Named
from sidecar.init.place import Place

CONSOLE = "console"
EVERYTHING = "everything-new"
MAX_RULES = 1000  # people and albums written as rules; the rest are counted in a comment
_SLUG = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Source:
    """How the written file reaches Immich: the URL as written, the key's line, and the
    command lines to try it with."""

    url_yaml: str  # the url's value as written in the file (quoted, or ${IMMICH_URL})
    shown_url: str  # as the header comment shows it (no password)
    key_line: str  # "api_key: ${IMMICH_API_KEY}" or "api_key_file: ..."
    key_note: str  # one comment line on where the key comes from
    config_arg: str  # "-c PATH" as the commands in the header need it ("" for the default)


@dataclass(frozen=True)
class RuleText:
    kind: str  # "everything", "person" or "album"
    name: str  # the rule's name (unique in the file)
    lines: tuple[str, ...]  # "- name: ...", then its keys, without indentation or '#'


def rules_for(inventory: Inventory) -> list[RuleText]:
    """Everything new, then one rule per named person, then one per album, as the file lists
    them (at most MAX_RULES people and albums)."""
    used = {EVERYTHING}
    found = [
        RuleText(
            "everything",
            EVERYTHING,
            (f"- name: {yaml_string(EVERYTHING)}", f"  targets: [{CONSOLE}]"),
        )
    ]
    items = [("person", p) for p in inventory.people] + [("album", a) for a in inventory.albums]
    for kind, item in items[:MAX_RULES]:
        name = _unique(_slug(item.name, "album-" if kind == "album" else ""), used)
        what = "people" if kind == "person" else "albums"
        found.append(
            RuleText(
                kind,
                name,
                (
                    f"- name: {yaml_string(name)}{_count_note(item)}",
                    f"  {what}: {{any: [{yaml_string(item.reference)}]}}",
                    f"  targets: [{CONSOLE}]",
                ),
            )
        )
    return found


def render(
    inventory: Inventory, place: Place, source: Source, on: Collection[str], today: date
) -> str:
    """The whole file; the rules named in ``on`` are written uncommented, the others ready to
    uncomment."""
    rules = rules_for(inventory)
    parts = [
        _header(inventory, source, today),
        _connection(source),
        _settings(place),
        _targets(),
        _rules(inventory, rules, on),
    ]
    return "\n".join(parts)


def _header(inventory: Inventory, source: Source, today: date) -> str:
    whose = f" (the API key of {comment_text(inventory.user)})" if inventory.user else ""
    arg = f" {source.config_arg}" if source.config_arg else ""
    lines = [
        f"# Written by `immich-sidecar init` on {today.isoformat()} from Immich "
        f"{inventory.version} at {comment_text(source.shown_url)}{whose}.",
        "#",
        f"# Check it:  immich-sidecar check-config{arg}",
        f"#            immich-sidecar doctor{arg}      (asks Immich and Discord)",
        f"# Run it:    immich-sidecar run{arg}",
        "# Turn a rule on: remove the '# ' before each of its lines (below, under rules:).",
        "#",
    ]
    if inventory.lacking:
        lines.append(
            "# The API key lacks permissions; what needs them is off until you tick them on the "
            f"key ({KEY_SETTINGS_HINT}):"
        )
        lines += [f"#   {label}: {', '.join(missing)}" for label, missing in inventory.lacking]
    else:
        lines.append("# The API key has every permission the sidecar uses.")
    lines += [f"# Not listed: {comment_text(note)}" for note in inventory.notes]
    return "\n".join(lines) + "\n"


def _connection(source: Source) -> str:
    return "\n".join(
        [
            "immich:",
            f"  url: {source.url_yaml}",
            f"  # {source.key_note}",
            f"  {source.key_line}",
            "",
        ]
    )


def _settings(place: Place) -> str:
    return "\n".join(
        [
            f"# Settings for a {place.name} (init --for {place.name}): {place.why}.",
            "poll:",
            f"  interval: {place.interval}",
            f"  settle: {place.settle}       # how old an upload must be before a rule "
            "without people decides on it",
            f"  backfill: {place.backfill}     # on the very first start, also what arrived "
            "this long before",
            "state:",
            f"  path: {place.state_path}",
            "metrics:",
            f"  listen: {place.metrics_listen}   # /metrics, /healthz, /readyz",
            "",
        ]
    )


def _targets() -> str:
    return "\n".join(
        [
            "targets:",
            f"  {CONSOLE}: {{console: true}}   # one JSON line per notification, on stdout",
            "  # A Discord channel webhook, no bot needed: in Discord, Server settings >",
            "  # Integrations > Webhooks > New Webhook > Copy Webhook URL. Put the URL in the",
            "  # environment variable DISCORD_WEBHOOK_URL, uncomment the next line, and add",
            "  # discord to a rule's targets (targets: [console, discord]).",
            '  # discord: {webhook_url: "${DISCORD_WEBHOOK_URL}"}',
            "",
        ]
    )


_GROUPS = {
    "everything": "  # Everything new, whoever is in it:",
    "person": "  # Each named person ({order}): photos and videos Immich recognised them in.",
    "album": "  # Each album (largest first): photos and videos added to it, whoever adds them.",
}


def _rules(inventory: Inventory, rules: list[RuleText], on: Collection[str]) -> str:
    order = "most photographed first" if inventory.people_counted else "in Immich's order"
    lines = ["rules:"]
    kind = ""
    for rule in rules:
        if rule.kind != kind:
            kind = rule.kind
            lines.append(_GROUPS[kind].format(order=order))
        mark = "" if rule.name in on else "# "
        lines += [f"  {mark}{line}" for line in rule.lines]
    left = len(inventory.people) + len(inventory.albums) - (len(rules) - 1)
    if left > 0:
        lines.append(f"  # ... and {left:,} more people and albums, left out of this file.")
    if not inventory.people and not inventory.albums:
        lines.append("  # Immich has no named people or albums yet: name people in Immich,")
        lines.append("  # then run init again (or write the rules yourself).")
    return "\n".join(lines) + "\n"


def _count_note(item: Named) -> str:
    shown = "" if item.unique else f" ({comment_text(item.name)}: by id, the name is not unique)"
    if item.count is None:
        return f"   # {comment_text(item.name)}{shown}" if not item.unique else ""
    noun = "photo or video" if item.count == 1 else "photos and videos"
    return f"   # {item.count:,} {noun}{shown}"


def _slug(name: str, prefix: str) -> str:
    """``Zoë Martin`` -> ``zoe-martin``: letters without accents, digits and dashes (letters
    of other scripts are kept)."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", name.casefold()) if not unicodedata.combining(c)
    )
    slug = _SLUG.sub("-", plain).strip("-")[:60].strip("-")
    return prefix + (slug or "unnamed")


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    while candidate in used:
        candidate, number = f"{name}-{number}", number + 1
    used.add(candidate)
    return candidate


def yaml_string(text: str) -> str:
    """A double-quoted YAML string that reads back as ``text``; ``${`` stays literal (the
    config expands ${VAR} in every string, and $${ is a literal ${)."""
    quoted = json.dumps(text.replace("${", "$${"), ensure_ascii=False)
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in quoted)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def comment_text(text: str) -> str:
    """Text safe inside a one-line comment: no line breaks or control characters."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]
