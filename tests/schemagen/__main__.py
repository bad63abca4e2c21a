"""``python -m tests.schemagen`` (``make schema``): write what is generated from the config schema
(sidecar/config.schema.json, the one source): its byte copy config/config.schema.json, the
configuration reference docs/reference/configuration.md and the chart's values.schema.json.
``--check`` writes nothing and fails naming each stale file (``tests/test_schemagen.py``)."""

from __future__ import annotations

import sys

from tests.schemagen.generated import stale, write


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        outdated = stale()
        for path in outdated:
            print(f"{path} is stale: run `make schema` (python -m tests.schemagen)")
        return 1 if outdated else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
