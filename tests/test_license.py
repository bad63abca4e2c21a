"""The licence the package, the image and the chart declare is in the repository, and in the
wheel that the image installs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_licence_file_is_the_mit_licence_the_package_declares() -> None:
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License\n\nCopyright (c) ")
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in licence
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert 'org.opencontainers.image.licenses="MIT"' in (ROOT / "Dockerfile").read_text()


@pytest.mark.slow
def test_the_wheel_carries_the_licence(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [licence] = [
            n
            for n in names
            if n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE")
        ]
        assert archive.read(licence).decode().startswith("MIT License")
