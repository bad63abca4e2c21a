"""What the schema cannot say about ``discord.ingest``: the bot it needs, one entry per channel,
someone allowed to upload, and a description template with known placeholders only."""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from typing import Any

from sidecar.config.model import KeyPath, Settings
from sidecar.wording import count

PLACEHOLDERS = ("member", "channel")
PORTAL_SWITCH = (
    "Discord Developer Portal > your application > Bot > Privileged Gateway Intents > "
    "Message Content Intent"
)


def ingest_lines(settings: Settings) -> list[str]:
    """What ``check-config`` says about the ingest channels (it cannot ask Discord)."""
    channels = settings.discord.ingest
    if not channels:
        return []
    ids = ", ".join(str(c.channel_id) for c in channels)
    return [
        f"discord.ingest: {count(len(channels), 'channel')} ({ids}) uploaded into Immich; "
        f"the bot needs the Message Content intent ({PORTAL_SWITCH})"
    ]


def template_problem(template: str) -> str | None:
    """Why a description template cannot be used, or None. Only ``{member}`` and ``{channel}``
    are known: anything else (``{member.id}``, ``{0}``) would fail or leak at upload time."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as error:
        return f"not a valid template ({error}); write {{{{ and }}}} for literal braces"
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
        return f"unknown placeholder {{{unknown[0]}}}; the known ones are {known}"
    return None


def render_description(template: str, member: str, channel: str) -> str:
    """The description of an ingested file (the template was checked at load)."""
    return template.format(member=member, channel=channel)


def ingest_problems(data: Mapping[str, Any]) -> Iterator[tuple[KeyPath, str]]:
    discord = data.get("discord")
    if not isinstance(discord, dict):
        return
    entries = discord.get("ingest")
    if not isinstance(entries, list) or not entries:
        return
    if "token" not in discord and "token_file" not in discord:
        yield ("discord", "ingest"), "ingest needs the bot: set discord.token"
    upload = (
        discord.get("commands", {}).get("upload", {})
        if isinstance(discord.get("commands"), dict)
        else {}
    )
    upload_roles = upload.get("allowed_roles", []) if isinstance(upload, dict) else []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            continue
        where: KeyPath = ("discord", "ingest", index)
        channel = str(entry.get("channel_id", ""))
        if channel in seen:
            yield (
                (*where, "channel_id"),
                f"channel {channel} is already listed at discord.ingest[{seen[channel]}]",
            )
        seen.setdefault(channel, index)
        roles = entry.get("allowed_roles", upload_roles)
        if isinstance(roles, list) and not [r for r in roles if str(r).strip()]:
            yield (
                (*where, "allowed_roles") if "allowed_roles" in entry else where,
                "nobody may upload here: list the role ids or names whose photos go into "
                "Immich in allowed_roles (or in discord.commands.upload.allowed_roles)",
            )
        template = entry.get("description")
        if isinstance(template, str) and (problem := template_problem(template)):
            yield (*where, "description"), problem
