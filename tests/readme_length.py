"""README.md stays short (``make lint`` runs ``python -m tests.readme_length``): it is the page a
home-lab user reads first; everything else belongs on the docs site (``docs/``, ``mkdocs.yml``).
"""

from __future__ import annotations

import sys
from pathlib import Path

MAX_README_LINES = 250
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_lines(path: Path = README) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def main() -> int:
    count = readme_lines()
    if count > MAX_README_LINES:
        print(
            f"README.md has {count} lines, more than {MAX_README_LINES}: move the details to a "
            "page under docs/ (and its nav entry in mkdocs.yml) and link to it"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
