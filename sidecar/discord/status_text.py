"""What ``/immich status`` says, in the member's language: Immich, the last poll, the outbox,
the config, the watched albums, what is off (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sidecar.engine.status import StatusInfo
from sidecar.messages import texts
from sidecar.messages.render import Words, say
from sidecar.targets.discord.safe import safe_text


def timestamp(moment: datetime, style: str) -> str:
    """A Discord timestamp: each reader sees it in their own time zone and language."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def status_lines(info: StatusInfo, words: Words) -> list[str]:
    """What ``/immich status`` says, in the member's language."""
    if info.immich_reachable:
        version = safe_text(info.immich_version or "?")
        lines = [say(words, texts.STATUS_REACHABLE, {"version": version})]
    else:
        lines = [say(words, texts.STATUS_UNREACHABLE, {})]
    poll = info.last_successful_poll
    when = timestamp(poll, "R") if poll else say(words, texts.STATUS_NEVER, {})
    lines += [
        say(words, texts.STATUS_POLL, {"when": when}),
        say(words, texts.STATUS_WAITING, {"count": info.outbox_pending}),
        say(words, texts.STATUS_FAILED, {"count": info.outbox_failed}),
        say(words, texts.STATUS_CONFIG, {"when": timestamp(info.config_loaded_at, "f")}),
    ]
    if info.albums:
        lines.append(watched_albums_line(info.albums, words))
    lines += [say(words, texts.STATUS_OFF, {"reason": safe_text(s)}) for s in info.features_off]
    return lines + [safe_text(problem) for problem in info.failing_accounts]


def watched_albums_line(
    albums: Sequence[tuple[str, int]], words: Words | None = None, shown: int = 10
) -> str:
    """ "Watched albums: Holiday 2026 (1,204 assets), Family (87 assets)"."""
    words = words or Words()
    unnamed = say(words, texts.UNNAMED_ALBUM_STATUS, {})
    parts = [
        say(words, texts.STATUS_ALBUM, {"name": safe_text(name) or unnamed, "count": count})
        for name, count in albums[:shown]
    ]
    if len(albums) > shown:
        parts.append(say(words, texts.STATUS_MORE_ALBUMS, {"count": len(albums) - shown}))
    return say(words, texts.STATUS_ALBUMS, {"albums": parts})
