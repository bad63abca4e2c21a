"""External command-line tools (helm, promtool, hadolint, kubernetes-validate) for the chart and
container checks. `make tools` (.ci/install-tools) puts them in .tools/bin.

Locally a missing tool skips its test with the reason; in CI (CI=true) it fails, because CI
must run every check."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

TOOLS_BIN = Path(__file__).resolve().parents[1] / ".tools" / "bin"


def require_tool(name: str) -> str:
    """The path of `name` from .tools/bin or PATH; skips (or fails in CI) when absent."""
    found = shutil.which(name, path=f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if found:
        return found
    reason = f"{name} not found in .tools/bin or PATH; run `make tools` (bash .ci/install-tools)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI requires {reason}", pytrace=False)
    pytest.skip(reason)
