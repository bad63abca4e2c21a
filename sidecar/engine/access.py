"""Which of the config's features can run with the API key: decided at start, changed only
when the key's permissions change.

A missing permission is a configuration problem, not an outage: the features that need it are
off (said once, with the fix), the others run. A 403 during a poll names the permission the key
lacks (Immich answers ``Missing required permission: person.read``), which turns off every
feature that needs it, once. While anything is off, the app reads the key's permissions again
at each poll (``GET /api/api-keys/me``, one small request); a feature comes back on as soon as
the key has what it needs, without a restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from sidecar.immich.permissions import (
    FALLBACK_FEATURES,
    RUNNING_FEATURES,
    SAFETY_FEATURES,
    Feature,
    gaps,
)
from sidecar.ops.metrics import Metrics

log = logging.getLogger(__name__)

_MISSING = re.compile(r"Missing required permission: ([A-Za-z.]+)")


def missing_permission(message: str) -> str | None:
    """The permission a 403 from Immich names, if it names one."""
    found = _MISSING.search(message)
    return found.group(1) if found else None


@dataclass(frozen=True)
class Change:
    """A feature that turned on or off, and what its key lacks (empty when on)."""

    feature: Feature
    missing: tuple[str, ...]

    @property
    def on(self) -> bool:
        return not self.missing


class FeatureAccess:
    """The features in use, which are off, and why. Logs each change once and keeps the
    ``feature_enabled`` gauge; performs no I/O of its own."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._features: tuple[Feature, ...] = ()
        self._listed: frozenset[str] | None = None  # the key's permissions as last read
        self._refused: set[str] = set()  # named by a 403 since the listing last changed
        self._off: dict[Feature, tuple[str, ...]] = {}
        self._decided = False

    # -- inputs ---------------------------------------------------------------------------------

    def use(self, features: Iterable[Feature]) -> list[Change]:
        """The features the (re)loaded config turns on."""
        self._features = tuple(features)
        self._metrics.feature_enabled.clear()
        return self._settle()

    def granted(self, permissions: Collection[str]) -> list[Change]:
        """The key's permissions as Immich lists them now. A 403 seen since stays in force
        until the listing changes (a listing that disagrees with a 403 must not flap)."""
        listed = frozenset(permissions)
        if listed != self._listed:
            self._listed = listed
            self._refused.clear()
        return self._settle()

    def refused(self, permission: str) -> list[Change]:
        """Immich answered 403 for lack of ``permission``."""
        self._refused.add(permission)
        return self._settle()

    # -- what is on -----------------------------------------------------------------------------

    @property
    def known(self) -> bool:
        """Whether the key's permissions were read at least once."""
        return self._listed is not None

    def is_on(self, feature: Feature) -> bool:
        return feature not in self._off

    def all_on(self, features: Iterable[Feature]) -> bool:
        return all(f not in self._off for f in features)

    @property
    def anything_off(self) -> bool:
        return bool(self._off)

    def off_sentences(self, *, safety: bool = True) -> list[str]:
        """One sentence per feature that is off, with the fix (/immich status; readiness leaves
        out the safety checks and the features with a fallback with ``safety=False``: the
        sidecar still does its job)."""
        return [
            f.off_sentence(missing)
            for f, missing in self._off.items()
            if safety or f not in SAFETY_FEATURES | FALLBACK_FEATURES
        ]

    def off_running(self) -> frozenset[Feature]:
        """The features rules and posts need that are off (their rules do not run)."""
        return frozenset(f for f in self._off if f in RUNNING_FEATURES)

    # -- the one place that decides -------------------------------------------------------------

    def _settle(self) -> list[Change]:
        if self._listed is None:
            return []
        effective = set(self._listed) - self._refused
        if "all" in effective and self._refused:  # "all" minus what Immich refused
            effective = {p for f in self._features for p in f.permissions} - self._refused
        off = gaps(self._features, effective)
        changes = [
            Change(feature, missing)
            for feature, missing in off.items()
            if self._off.get(feature) != missing
        ]
        if self._decided:
            changes += [Change(f, ()) for f in self._off if f not in off and f in self._features]
        self._off = off
        self._decided = True
        for feature in self._features:
            self._metrics.feature_enabled.labels(feature=feature.key).set(feature not in off)
        for change in changes:
            self._announce(change)
        return changes

    @staticmethod
    def _announce(change: Change) -> None:
        feature = change.feature
        if change.on:
            log.info("%s", feature.on_sentence())
        else:
            level = logging.ERROR if feature in RUNNING_FEATURES else logging.WARNING
            log.log(level, "%s", feature.off_sentence(change.missing))
