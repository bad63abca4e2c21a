"""The house rules (``tests/layout.py``, run by ``make lint``): each is shown to fail on a tree
that breaks it, and the real tree keeps them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.layout import ALLOWED, import_allowed, problems

ROOT = Path(__file__).resolve().parents[1]


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "sidecar"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not (path.parent / "__init__.py").exists():
            (path.parent / "__init__.py").write_text("")
        path.write_text(text)
    return root


def _function(name: str, body_lines: int) -> str:
    return f"def {name}() -> None:\n" + "    x = 1\n" * (body_lines - 1)


def test_the_real_tree_keeps_every_house_rule() -> None:
    assert [str(p) for p in problems(ROOT / "sidecar")] == []


def test_make_lint_runs_the_check_and_fails_on_a_breach(tmp_path: Path) -> None:
    assert "python -m tests.layout" in (ROOT / "Makefile").read_text()
    root = _tree(tmp_path, {"engine/big.py": "x = 1\n" * 401})
    done = subprocess.run(
        [sys.executable, "-m", "tests.layout", str(root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "sidecar/engine/big.py: 401 lines (at most 400)" in done.stderr


def test_a_module_of_400_lines_passes_and_401_fails(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"ops/fits.py": "x = 1\n" * 400, "ops/over.py": "x = 1\n" * 401})
    assert [str(p) for p in problems(root)] == ["sidecar/ops/over.py: 401 lines (at most 400)"]


def test_a_function_of_61_lines_fails_where_60_pass(tmp_path: Path) -> None:
    source = (
        _function("fits", 60)
        + "\n\nclass Holder:\n    "
        + _function("over", 61).replace("\n", "\n    ")
    )
    root = _tree(tmp_path, {"config/loader.py": source})
    assert [str(p) for p in problems(root)] == [
        "sidecar/config/loader.py:64: over is 61 lines (at most 60)"
    ]


def test_a_folder_of_13_modules_fails(tmp_path: Path) -> None:
    files = {f"targets/kind{i}.py": "" for i in range(13)}
    files |= {f"immich/part{i}.py": "" for i in range(12)}
    root = _tree(tmp_path, files)
    assert [str(p) for p in problems(root)] == ["sidecar/targets/: 13 modules (at most 12)"]


@pytest.mark.parametrize(
    ("module", "source", "breach"),
    [
        # the pure rules know nothing of the state file
        (
            "engine/rules/matching.py",
            "from sidecar.engine.store.database import Store\n",
            "sidecar.engine.rules may not import sidecar.engine.store.database",
        ),
        # Immich's client knows nothing of the engine, even inside a function
        (
            "immich/client.py",
            "def f() -> None:\n    from sidecar.engine.session import ImmichSession\n",
            "sidecar.immich may not import sidecar.engine.session",
        ),
        # a target kind renders what it is given; it does not ask the store
        (
            "targets/console.py",
            "from sidecar.engine import dispatch\n",
            "sidecar.targets may not import sidecar.engine.dispatch",
        ),
        # the engine never reaches up into the bot
        (
            "engine/uploads/poller.py",
            "import sidecar.discord.bot\n",
            "sidecar.engine.uploads may not import sidecar.discord.bot",
        ),
    ],
)
def test_an_import_against_the_direction_fails(
    tmp_path: Path, module: str, source: str, breach: str
) -> None:
    files = {module: source, "engine/dispatch/__init__.py": "", "engine/store/database.py": ""}
    root = _tree(tmp_path, files)
    assert [p.what for p in problems(root)] == [f"{breach} (see ARCHITECTURE.md)"]


def test_the_direction_table_allows_what_it_documents() -> None:
    assert import_allowed("sidecar.engine.uploads.poller", "sidecar.engine.rules.matching")
    assert import_allowed("sidecar.config.loader", "sidecar.targets.registry")
    assert not import_allowed("sidecar.config.loader", "sidecar.targets.console")
    assert import_allowed("sidecar.app", "sidecar.engine.store.database")
    assert not import_allowed("sidecar.app", "sidecar.cli.main")
    # every area the table names is a real package or module
    for area in ALLOWED:
        path = ROOT / area.replace(".", "/")
        assert path.is_dir() or path.with_suffix(".py").is_file(), area


def test_architecture_md_draws_the_same_table() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    for area in ALLOWED:
        assert f"`{area.removeprefix('sidecar.')}`" in text, area
