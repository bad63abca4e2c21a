"""The status page's config (a password off loopback and for pictures, exit 2 at the key), its
password check and the explain argument (id or Immich link)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from sidecar.cli.main import main
from sidecar.config.loader import load_settings
from sidecar.engine.explain.reader import AssetRefError, asset_id_of
from sidecar.ui.server import password_matches
from tests.config_helpers import ENV, VALID

ASSET = "0c2f3a4b-1111-4222-8333-444455556666"


def write(tmp: Path, ui: str) -> Path:
    path = tmp / "config.yaml"
    path.write_text(VALID + ui)
    return path


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


def ui_line(tmp: Path, key: str) -> int:
    text = (tmp / "config.yaml").read_text().splitlines()
    return next(n for n, line in enumerate(text, 1) if line.strip().startswith(f"{key}:"))


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_listening_off_loopback_without_a_password_is_refused_at_the_key(tmp_path, capsys, command):
    path = write(tmp_path, "ui:\n  listen: 0.0.0.0:9189\n")
    args = ["check-config", str(path)] if command == "check-config" else ["run", "-c", str(path)]
    assert main(args) == 2
    err = capsys.readouterr().err
    line = ui_line(tmp_path, "listen")
    assert (
        f"{path}:{line}: ui.listen: 0.0.0.0:9189 is not a loopback address, so the status " in err
    )
    assert "needs ui.password or ui.password_file" in err
    assert "Traceback" not in err


def test_pictures_without_a_password_are_refused_at_the_key(tmp_path, capsys):
    path = write(tmp_path, "ui:\n  pictures: true\n")
    assert main(["check-config", str(path)]) == 2
    line = ui_line(tmp_path, "pictures")
    assert (
        f"{path}:{line}: ui.pictures: showing pictures needs ui.password or ui.password_file: "
        "family photos are never served without a password"
    ) in capsys.readouterr().err


def test_a_password_file_allows_both(tmp_path):
    secret = tmp_path / "ui"
    secret.write_text("correct horse battery\n")
    path = write(
        tmp_path, f"ui:\n  listen: '[::]:9190'\n  password_file: {secret}\n  pictures: true\n"
    )
    ui = load_settings(path).ui
    assert ui is not None
    assert (ui.host, ui.port, ui.pictures) == ("::", 9190, True)
    assert ui.password is not None and ui.password.reveal() == "correct horse battery"
    assert "correct horse" not in repr(ui)


def test_the_page_is_off_without_a_ui_block_and_on_loopback_by_default(tmp_path):
    assert load_settings(write(tmp_path, "")).ui is None
    ui = load_settings(write(tmp_path, "ui: {}\n")).ui
    assert ui is not None and (ui.host, ui.port, ui.password) == ("127.0.0.1", 9189, None)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_password_check():
    assert password_matches(basic("anyone", "s3cret-pass"), "s3cret-pass")
    assert password_matches(basic("", "s3cret-pass"), "s3cret-pass")
    assert not password_matches(basic("anyone", "s3cret-pas"), "s3cret-pass")
    assert not password_matches(basic("s3cret-pass", ""), "s3cret-pass")
    assert not password_matches(None, "s3cret-pass")
    assert not password_matches("Bearer s3cret-pass", "s3cret-pass")
    assert not password_matches("Basic !!!not-base64", "s3cret-pass")
    assert not password_matches("Basic " + base64.b64encode(b"\xff:x").decode(), "x")


@pytest.mark.parametrize(
    "given",
    [
        ASSET,
        ASSET.upper(),
        f"https://photos.example.org/photos/{ASSET}",
        f"https://photos.example.org/albums/{'1' * 8}-1111-4111-8111-{'1' * 12}/photos/{ASSET}",
        f"http://immich:2283/api/assets/{ASSET}/thumbnail?size=preview",
        f"  https://photos.example.org/photos/{ASSET}?x=1  ",
    ],
)
def test_an_asset_by_id_or_link(given):
    assert asset_id_of(given) == ASSET


@pytest.mark.parametrize(
    "given", ["", "hello", f"https://photos.example.org/people/{ASSET}", ASSET[:-1], "x" * 500]
)
def test_not_an_asset(given):
    with pytest.raises(AssetRefError, match="is not an asset id or an Immich link to an asset"):
        asset_id_of(given)
