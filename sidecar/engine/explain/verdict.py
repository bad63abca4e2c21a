"""What ``explain`` answers (pure values), as text for a person and as JSON for a script.

The JSON shape is versioned (``EXPLAIN_VERSION``) and documented in docs/explain.md; a field
is only ever added within a version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

EXPLAIN_VERSION = 1

POSTED = "posted"
QUEUED = "queued"
WILL_NOT_POST = "will not post"
NOT_SEEN = "not seen yet"
VERDICTS = (POSTED, QUEUED, WILL_NOT_POST, NOT_SEEN)


@dataclass(frozen=True)
class Verdict:
    """One answer of a rule: for one of its targets (a delivery), or for all of them."""

    kind: str  # one of VERDICTS
    reason: str  # the words shown, times in the config's zone
    target: str | None = None  # None: the rule as a whole
    at: datetime | None = None  # posted: when; queued / not seen yet: when it is tried next
    link: str | None = None  # posted: the Discord message, where known
    # queued: settle, quiet_hours, metadata, retry (a failing target), dispatch; else None
    waits_for: str | None = None

    def json(self) -> dict[str, Any]:
        return {
            "verdict": self.kind,
            "reason": self.reason,
            "target": self.target,
            "at": self.at.isoformat() if self.at else None,
            "link": self.link,
            "waits_for": self.waits_for,
        }


@dataclass(frozen=True)
class RuleBlock:
    """What one rule (or album rule) says of the asset."""

    rule: str
    album_rule: bool
    targets: tuple[str, ...]
    verdicts: tuple[Verdict, ...]

    def json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": "album" if self.album_rule else "upload",
            "targets": list(self.targets),
            "verdicts": [v.json() for v in self.verdicts],
        }


@dataclass(frozen=True)
class AssetSummary:
    id: str
    file_name: str
    type: str
    uploaded: datetime
    taken: datetime | None
    faces: str  # "faces: Alice, unnamed ×1"
    seen_by: tuple[str, ...]  # the accounts that can read it
    owner: str | None  # the account whose asset it is, where known


@dataclass(frozen=True)
class Explanation:
    asset: AssetSummary
    blocks: tuple[RuleBlock, ...]
    timezone: str
    now: datetime

    def json(self) -> dict[str, Any]:
        asset = self.asset
        return {
            "version": EXPLAIN_VERSION,
            "asset": {
                "id": asset.id,
                "file_name": asset.file_name,
                "type": asset.type,
                "uploaded": asset.uploaded.isoformat(),
                "taken": asset.taken.isoformat() if asset.taken else None,
                "faces": asset.faces,
                "seen_by": list(asset.seen_by),
                "owner": asset.owner,
            },
            "rules": [block.json() for block in self.blocks],
            "timezone": self.timezone,
            "at": self.now.isoformat(),
        }

    def lines(self) -> list[str]:
        """The answer as text: the asset, then one block per rule."""
        clock = Clock(self.now, zone_named(self.timezone))
        asset = self.asset
        taken = f", taken {clock.long(asset.taken)}" if asset.taken else ""
        owner = f" (owner {asset.owner})" if asset.owner else ""
        lines = [
            f"asset {asset.id}: {asset.file_name or 'no file name'} ({asset.type}), uploaded "
            f"{clock.long(asset.uploaded)}{taken}; times in {self.timezone}",
            f"read through account {', '.join(asset.seen_by)}{owner}; {asset.faces}",
        ]
        if not self.blocks:
            lines.append("no rules in the config")
        for block in self.blocks:
            kind = "album rule" if block.album_rule else "rule"
            lines.append(f"{kind} {block.rule} -> {', '.join(block.targets) or 'no targets'}")
            lines += [f"  {verdict_line(v)}" for v in block.verdicts]
        return lines


def verdict_line(verdict: Verdict) -> str:
    """``posted to discord at 14:02: https://...`` / ``queued: settle until 14:02``."""
    where = f" ({verdict.target})" if verdict.target else ""
    return f"{verdict.kind}{where}: {verdict.reason}"


def zone_named(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class Clock:
    """Times as the answer shows them: ``14:02`` today, ``2026-05-01 14:02`` another day."""

    now: datetime
    zone: ZoneInfo

    def short(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        if local.date() == self.now.astimezone(self.zone).date():
            return (
                f"{local:%H:%M:%S}"
                if abs(moment - self.now) < timedelta(minutes=5)
                else (f"{local:%H:%M}")
            )
        return self.long(moment)

    def long(self, moment: datetime) -> str:
        return f"{moment.astimezone(self.zone):%Y-%m-%d %H:%M}"


def span(seconds: float) -> str:
    """``48h``, ``2m``, ``90s``: a duration as the config writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def names(items: Sequence[str]) -> str:
    return ", ".join(items)
