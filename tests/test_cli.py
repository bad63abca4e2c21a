"""The immich-sidecar command line: check-config, schema, and how run/dry-run reach the app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from sidecar.cli.main import main
from sidecar.cli.parser import build_parser
from sidecar.config.model import ConfigError, Problem
from tests.config_helpers import ENV, REPO_ROOT, SECRETS, VALID, write_config


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SIDECAR_CONFIG", raising=False)
    monkeypatch.delenv("SIDECAR_LOG_LEVEL", raising=False)


def test_check_config_of_the_example_passes(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO_ROOT)

    assert main(["check-config", "config/config.example.yaml"]) == 0

    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        "config/config.example.yaml: OK: 2 rules, 3 targets "
        "(1 bot channel, 1 webhook, 1 console), poll every 2m"
    )
    assert not any(secret in out + err for secret in SECRETS)


def test_check_config_takes_c_option_and_counts_plurals(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = VALID.replace(
        "  stdout: {console: true}", "  stdout: {console: true}\n  b: {console: true}"
    )
    path = write_config(tmp_path, text)

    assert main(["check-config", "-c", str(path)]) == 0

    assert capsys.readouterr().out.splitlines()[0] == (
        f"{path}: OK: 2 rules, 4 targets (1 bot channel, 1 webhook, 2 console), poll every 1h30m"
    )


def test_check_config_says_it_is_offline_and_names_the_online_checks(
    env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A wrong API key and an unknown person pass this check: the output must say so.
    path = write_config(tmp_path, VALID.replace("[Alice, Bob]", "[Nobody Known]"))

    assert main(["check-config", str(path)]) == 0

    out = capsys.readouterr().out
    assert out.startswith(f"{path}: OK: ")
    note = " ".join(out.splitlines()[1:])
    assert "offline check" in note
    assert "Immich and Discord were not contacted" in note
    assert "`immich-sidecar doctor`" in note and "`immich-sidecar dry-run`" in note


def test_check_config_defaults_to_sidecar_config_env(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, VALID, name="elsewhere.yaml")
    monkeypatch.setenv("SIDECAR_CONFIG", str(path))

    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith(f"{path}: OK: ")


def test_check_config_default_path_is_config_yaml(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config/config.yaml: no config file there. Name yours with -c PATH")
    assert "SIDECAR_CONFIG" in err and "copy the project's config/config.local.yaml" in err


def test_a_config_yaml_beside_you_is_read_when_config_config_yaml_is_absent(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    write_config(tmp_path, VALID, name="config.yaml")
    assert main(["check-config"]) == 0
    assert capsys.readouterr().out.startswith("config.yaml: OK: ")
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config", VALID.replace("1h30m", "5m"), name="config.yaml")
    assert main(["check-config"]) == 0  # config/config.yaml wins when both are there
    assert capsys.readouterr().out.startswith("config/config.yaml: OK: ")


def test_check_config_refuses_two_different_paths(
    env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check-config", "a.yaml", "-c", "b.yaml"]) == 2
    assert "not both" in capsys.readouterr().err


def test_schema_prints_the_shipped_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == (REPO_ROOT / "sidecar" / "config.schema.json").read_text(encoding="utf-8")
    assert json.loads(out)["required"] == ["immich", "targets"]  # rules may be left out


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sidecar", "check-config", "does-not-exist.yaml"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("does-not-exist.yaml: no config file there. ")


def closed_stdout_run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command with a stdout whose reader is already gone, as after `| head -1` stops
    reading: every write to it fails with EPIPE."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(
            [sys.executable, "-m", "sidecar", *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env={**os.environ, **env},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["schema"], 1),
        (["check-config", "config/config.example.yaml"], 1),
        (["--help"], 0),  # argparse drops what it cannot write itself
        (["dry-run", "--posts", "-c", "config/config.example.yaml"], 1),
        (["doctor", "-c", "{config}"], 1),
    ],
    ids=["schema", "check-config", "help", "dry-run-posts", "doctor"],
)
def test_a_reader_that_stops_reading_ends_the_command_quietly(
    args: list[str], code: int, tmp_path: Path
) -> None:
    """`immich-sidecar schema | head -1` once ended in a BrokenPipeError traceback."""
    # doctor: nothing answers, it prints its ✗ lines
    config = write_config(
        tmp_path, VALID.replace("http://immich-server:2283", "http://127.0.0.1:9")
    )
    args = [arg.format(config=config) for arg in args]
    result = closed_stdout_run(args, {**ENV, "SIDECAR_LOG_LEVEL": "WARNING"})
    assert result.stderr == "", result.stderr
    assert result.returncode == code


class RecordingApp(types.ModuleType):
    """Stands in for sidecar.app: records what the CLI hands over, returns a chosen result."""

    def __init__(self, result: Any = None, error: BaseException | None = None) -> None:
        super().__init__("sidecar.app")
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.result = result
        self.error = error

    def _call(self, name: str, *args: Any) -> Any:
        self.calls.append((name, args))
        if self.error is not None:
            raise self.error
        return self.result

    def run_forever(self, path: Path, *, reset_state: bool = False) -> Any:
        return self._call("run_forever", path, reset_state)

    def dry_run(self, path: Path, since: float | None) -> Any:
        return self._call("dry_run", path, since)


def _install(monkeypatch: pytest.MonkeyPatch, app: RecordingApp) -> RecordingApp:
    monkeypatch.setitem(sys.modules, "sidecar.app", app)
    monkeypatch.setitem(sys.modules, "sidecar.engine.dry_run", app)  # dry-run's own module
    return app


def test_run_hands_the_config_path_to_the_app(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    app = _install(monkeypatch, RecordingApp(result=None))
    monkeypatch.setenv("SIDECAR_CONFIG", "/etc/sidecar.yaml")

    assert main(["run"]) == 0
    assert main(["run", "-c", "mine.yaml"]) == 0
    assert main(["run", "--reset-state"]) == 0

    assert app.calls == [
        ("run_forever", (Path("/etc/sidecar.yaml"), False)),
        ("run_forever", (Path("mine.yaml"), False)),
        ("run_forever", (Path("/etc/sidecar.yaml"), True)),
    ]


def test_dry_run_parses_since_or_uses_the_lookback(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = _install(monkeypatch, RecordingApp(result=3))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    write_config(tmp_path / "config", VALID.replace("1h30m", "1h30m\n  lookback: 6h"))

    assert main(["dry-run", "-c", "c.yaml", "--since", "1h30m"]) == 3
    assert main(["dry-run"]) == 3

    assert app.calls == [
        ("dry_run", (Path("c.yaml"), 5400.0)),
        ("dry_run", (Path("config/config.yaml"), 6 * 3600.0)),
    ]


def test_dry_run_without_since_reports_config_problems(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _install(monkeypatch, RecordingApp())
    path = write_config(tmp_path, VALID.replace("1h30m", "never"))

    assert main(["dry-run", "-c", str(path)]) == 2

    assert capsys.readouterr().err.startswith(f"{path}:7: poll.interval: expected a duration")
    assert app.calls == []


def test_dry_run_refuses_a_bad_since(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dry-run", "--since", "soon"]) == 2
    assert "expected a duration like 30s, 2m or 48h" in capsys.readouterr().err


def test_config_error_from_the_app_prints_problem_lines(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = ConfigError("c.yaml", [Problem(4, "poll.interval", "must be longer than 0s")])
    _install(monkeypatch, RecordingApp(error=error))

    assert main(["run", "-c", "c.yaml"]) == 2
    assert capsys.readouterr().err == "c.yaml:4: poll.interval: must be longer than 0s\n"


def test_unexpected_errors_are_one_line(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _install(monkeypatch, RecordingApp(error=RuntimeError("port 9187 is in use")))

    assert main(["run"]) == 1
    assert capsys.readouterr().err == "immich-sidecar: error: RuntimeError: port 9187 is in use\n"


def test_interrupt_exits_quietly(env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(monkeypatch, RecordingApp(error=KeyboardInterrupt()))
    assert main(["run"]) == 130


def test_log_level_option_and_env(
    env: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--log-level", "nonsense", "schema"]) == 2
    assert "invalid choice" in capsys.readouterr().err

    monkeypatch.setenv("SIDECAR_LOG_LEVEL", "chatty")
    assert main(["schema"]) == 2
    err = capsys.readouterr().err
    assert "SIDECAR_LOG_LEVEL is 'chatty', which is not a log level" in err
    assert "one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in err
    assert "--log-level" not in err  # the user never typed it

    monkeypatch.setenv("SIDECAR_LOG_LEVEL", "debug")
    assert main(["schema"]) == 0


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: immich-sidecar" in capsys.readouterr().err


def test_log_level_may_follow_the_command(env: None) -> None:
    parser = build_parser()
    assert parser.parse_args(["run", "--log-level", "debug"]).log_level == "DEBUG"
    assert parser.parse_args(["--log-level", "error", "run"]).log_level == "ERROR"
    assert (
        parser.parse_args(
            ["--log-level", "error", "check-config", "--log-level", "debug"]
        ).log_level
        == "DEBUG"
    )
    assert parser.parse_args(["dry-run"]).log_level == "INFO"
    for command in ("run", "dry-run", "check-config", "doctor", "schema"):
        assert parser.parse_args([command, "--log-level", "warning"]).log_level == "WARNING"
