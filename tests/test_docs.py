"""The docs: the site builds with ``mkdocs build --strict`` (a broken link, a missing anchor or a
page left out of the nav fails it), the README stays short, and the lists the docs keep of
things defined elsewhere (tools, metrics, alerts) name exactly those things."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client import Counter

from sidecar.ops.metrics import DEFINITIONS, PREFIX
from tests.readme_length import MAX_README_LINES, readme_lines

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).with_name("mkdocs")


def build(root: Path, site: Path) -> subprocess.CompletedProcess[str]:
    if not MKDOCS.exists():
        pytest.skip("mkdocs is not installed (the docs extra: make venv)")
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )


def copy_of_the_docs(into: Path) -> Path:
    shutil.copy2(ROOT / "mkdocs.yml", into / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", into / "docs")
    return into


def test_the_site_builds_strict_with_every_page(tmp_path: Path) -> None:
    done = build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    for page in pages:
        html = tmp_path / "site" / (page.removesuffix(".md") + "/index.html")
        if page == "index.md":
            html = tmp_path / "site" / "index.html"
        assert html.exists(), f"{page} was not built"
    # The webhook body's schema, which the JSON webhooks page links to, is published with it.
    assert (tmp_path / "site" / "http-webhook.schema.json").exists()


@pytest.mark.parametrize(
    ("page", "planted", "complaint"),
    [
        ("rules.md", "[gone](no-such-page.md)", "no-such-page.md"),
        ("rules.md", "[gone](albums.md#no-such-anchor)", "no-such-anchor"),
    ],
)
def test_a_broken_link_fails_the_build(
    tmp_path: Path, page: str, planted: str, complaint: str
) -> None:
    root = copy_of_the_docs(tmp_path)
    with (root / "docs" / page).open("a") as handle:
        handle.write(f"\nSee {planted}.\n")
    done = build(root, tmp_path / "site")
    assert done.returncode != 0
    assert complaint in done.stderr


def test_a_page_left_out_of_the_nav_fails_the_build(tmp_path: Path) -> None:
    root = copy_of_the_docs(tmp_path)
    (root / "docs" / "orphan.md").write_text("# Orphan\n")
    done = build(root, tmp_path / "site")
    assert done.returncode != 0
    assert "orphan.md" in done.stderr


def test_the_readme_shows_the_picture_of_a_notification_and_says_what_it_is() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "](docs/images/notification.png)" in readme
    assert "not a screenshot of Discord" in readme
    picture = (ROOT / "docs" / "images" / "notification.png").read_bytes()
    assert picture.startswith(b"\x89PNG")


def test_the_readme_is_short() -> None:
    assert readme_lines() <= MAX_README_LINES


def test_the_readme_length_check_fails_past_the_limit(tmp_path: Path) -> None:
    long = tmp_path / "README.md"
    long.write_text("line\n" * (MAX_README_LINES + 1))
    assert readme_lines(long) == MAX_README_LINES + 1 > MAX_README_LINES


def test_the_readme_opens_with_the_command_to_run_and_the_command_to_test() -> None:
    readme = (ROOT / "README.md").read_text()
    first = re.search(r"```sh\n(.*?)```", readme, re.DOTALL)
    assert first is not None
    commands = [line.split("#")[0].strip() for line in first[1].splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()  # the README's test command is CI's


def test_every_link_of_the_readme_into_the_docs_names_a_page_in_the_nav() -> None:
    readme = (ROOT / "README.md").read_text()
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def pages(entry: object) -> list[str]:
        if isinstance(entry, str):
            return [entry]
        if isinstance(entry, list):
            return [p for item in entry for p in pages(item)]
        if isinstance(entry, dict):
            return [p for value in entry.values() for p in pages(value)]
        return []

    linked = set(re.findall(r"\]\(docs/([^)#]+\.md)(?:#[^)]*)?\)", readme))
    assert linked, "the README links into no docs page"
    assert linked <= set(pages(nav))


def _tools_installed() -> list[str]:
    """The tools .ci/install-tools lists in its header, in its order."""
    header = (ROOT / ".ci" / "install-tools").read_text().split("set -euo pipefail")[0]
    return re.findall(r"^#\s{3}(\S+)\s", header, re.MULTILINE)


def test_the_makefile_and_contributing_name_the_tools_install_tools_installs() -> None:
    tools = _tools_installed()
    assert {"helm", "promtool", "shellcheck", "kubernetes-validate"} <= set(tools)
    script = (ROOT / ".ci" / "install-tools").read_text()
    for tool in tools:
        assert f'"$BIN/{tool}"' in script or re.search(rf"for tool in .*\b{tool}\b", script), tool
    makefile = (ROOT / "Makefile").read_text()
    said = " ".join(
        line.removeprefix("## ") for line in makefile.splitlines() if line.startswith("## ")
    )
    tools_help = said[said.index("tools:") : said.index("lint:")]
    contributing = (ROOT / "CONTRIBUTING.md").read_text()
    tools_section = contributing[contributing.index("## Tools") :]
    tools_section = tools_section[: tools_section.index("\n```")]
    for tool in tools:
        assert re.search(rf"\b{re.escape(tool)}\b", tools_help), f"Makefile's tools: {tool}"
        assert re.search(rf"\b{re.escape(tool)}\b", tools_section), f"CONTRIBUTING: {tool}"


def test_the_metrics_page_lists_every_metric_the_sidecar_serves() -> None:
    page = (ROOT / "docs" / "metrics.md").read_text()
    listed = set(re.findall(r"^\| `(immich_sidecar_[a-z_]+)[{`]", page, re.MULTILINE))
    served = {PREFIX + d.name + ("_total" if d.kind is Counter else "") for d in DEFINITIONS}
    assert listed == served


def test_the_alerts_table_lists_every_alert_rule() -> None:
    page = (ROOT / "docs" / "metrics.md").read_text()
    listed = set(re.findall(r"^\| `(ImmichSidecar[A-Za-z]+)`", page, re.MULTILINE))
    rules = yaml.safe_load(
        (ROOT / "helm" / "immich-discord-sidecar" / "files" / "alerts.yaml").read_text()
    )
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert listed == alerts
