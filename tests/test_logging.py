"""Log lines as text (the default) or JSON (``--log-format json`` / ``SIDECAR_LOG_FORMAT``), with
the structured fields of a line as keys of their own and never a secret."""

from __future__ import annotations

import json
import logging
import textwrap
from datetime import UTC, datetime

import pytest

from sidecar.cli.main import main
from sidecar.ops.logging import formatter, log_fields
from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich
from tests.fakes.http_receiver import Receiver


def record(**extra: object) -> logging.LogRecord:
    rec = logging.LogRecord(
        "sidecar.engine.dispatch.dispatcher",
        logging.ERROR,
        __file__,
        1,
        "target %s: deliveries failed for good",
        ("hook",),
        None,
    )
    rec.__dict__.update(extra)
    return rec


def test_json_lines_carry_the_fields_as_keys() -> None:
    line = formatter("json").format(
        record(**log_fields(target="hook", rule="kids", reason="rejected"))
    )
    data = json.loads(line)
    assert data["message"] == "target hook: deliveries failed for good"
    assert (data["level"], data["logger"]) == ("ERROR", "sidecar.engine.dispatch.dispatcher")
    assert (data["target"], data["rule"], data["reason"]) == ("hook", "kids", "rejected")
    assert "time" in data


def test_text_stays_the_default_shape() -> None:
    line = formatter("text").format(record(**log_fields(target="hook")))
    assert line.endswith(
        "ERROR sidecar.engine.dispatch.dispatcher: target hook: deliveries failed for good"
    )


def test_only_the_known_fields_are_accepted() -> None:
    assert log_fields(rule="kids", asset_id=None) == {"rule": "kids"}
    with pytest.raises(ValueError, match="url"):
        log_fields(url="https://example/secret")


def test_a_bad_log_format_in_the_environment_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIDECAR_LOG_FORMAT", "xml")
    assert main(["check-config", "-c", "nowhere.yaml"]) == 2
    assert "SIDECAR_LOG_FORMAT is 'xml', which is not a log format" in capsys.readouterr().err
    monkeypatch.delenv("SIDECAR_LOG_FORMAT")
    assert main(["check-config", "--log-format", "xml", "-c", "nowhere.yaml"]) == 2


@pytest.mark.e2e
async def test_the_real_process_logs_json_with_fields_and_no_secret(tmp_path):
    async with FakeImmich() as immich, Receiver() as receiver:
        alice = immich.add_person("Alice")
        receiver.answer("/gone-s3cr3t", 404)
        config, port = tmp_path / "config.yaml", free_port()
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=port,
            rules="- name: kids\n  people: {any: [Alice]}\n  targets: [hook]",
            targets=textwrap.dedent(f"""\
                hook: {{http: {{url: "{receiver.url}/gone-s3cr3t", secret: "hmac-s3cr3t"}}}}
                """),
        )
        process = SidecarProcess(
            config, {"IMMICH_API_KEY": immich.api_key}, port, options=("--log-format", "json")
        )
        await process.start()
        try:
            immich.add_asset(created_at=datetime.now(UTC), people=(alice,))
            await process.wait_for_log("failed for good")
        finally:
            assert await process.stop() == 0
    lines = [json.loads(line) for line in process.stderr if line.strip()]
    [failure] = [line for line in lines if "failed for good" in line["message"]]
    assert (failure["target"], failure["rule"], failure["reason"]) == ("hook", "kids", "rejected")
    assert failure["level"] == "ERROR"
    text = "\n".join(process.stderr)
    for secret in (immich.api_key, "s3cr3t"):
        assert secret not in text
