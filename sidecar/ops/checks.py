"""One ``doctor`` check's outcome, shared by the doctor and the target kinds that check
themselves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` False means a configured feature cannot work."""

    ok: bool
    line: str
    fix: str = ""

    def render(self) -> str:
        mark = "✓" if self.ok else "✗"
        return f"{mark} {self.line}" + (f" -> {self.fix}" if self.fix else "")


def passed(line: str) -> Check:
    return Check(True, line)


def failed(line: str, fix: str) -> Check:
    return Check(False, line, fix)
