"""The ``discord.members`` block: people links written in the config, who approves claims, and
who gets the Favourite button. Reading it, and what the schema cannot say about it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.config.model import KeyPath, MembersSettings, Problem, format_key_path
from sidecar.config.yamlfile.source import LineMap


def read_members(discord: Mapping[str, Any]) -> MembersSettings:
    """The members settings of a schema-valid ``discord`` mapping."""
    links = discord.get("members", {})
    channel = discord.get("members_channel")
    return MembersSettings(
        links=tuple((str(name), int(user)) for name, user in links.items()),
        approvers=tuple(int(role) for role in discord.get("members_approvers", ())),
        channel_id=int(channel) if channel is not None else None,
        claims=str(discord.get("claims", "approval")),
        favourite_roles=tuple(str(role) for role in discord.get("favourite_roles", ())),
    )


def member_problems(data: Mapping[str, Any], lines: LineMap) -> list[Problem]:
    """One member links to one person; an approval flow needs both its channel and its
    approvers; DMs and member mentions need the bot."""
    problems: list[Problem] = []

    def add(path: KeyPath, message: str) -> None:
        problems.append(Problem(lines.line_of(path), format_key_path(path), message))

    discord = data.get("discord")
    discord = discord if isinstance(discord, dict) else {}
    links = discord.get("members")
    seen: dict[str, str] = {}
    for name, user in links.items() if isinstance(links, dict) else ():
        key = str(user)
        if key in seen:
            add(
                ("discord", "members", name),
                f"Discord user {key} is already linked to {seen[key]!r}: a member links to one "
                "person",
            )
        seen.setdefault(key, str(name))
    has_channel = "members_channel" in discord
    has_approvers = bool(discord.get("members_approvers"))
    if discord.get("claims", "approval") == "approval" and has_channel != has_approvers:
        present, absent = (
            ("members_channel", "members_approvers")
            if has_channel
            else ("members_approvers", "members_channel")
        )
        add(
            ("discord", present),
            f"claims wait for approval in discord.members_channel by discord.members_approvers: "
            f"set discord.{absent} too (or claims: open)",
        )
    has_token = "token" in discord or "token_file" in discord
    rules = data.get("rules")
    for index, rule in enumerate(rules if isinstance(rules, list) else []):
        if isinstance(rule, dict) and rule.get("mention_members") and not has_token:
            add(
                ("rules", index, "mention_members"),
                "mentions of members need the bot: set discord.token",
            )
    return problems
