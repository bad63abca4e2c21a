"""The push endpoint in-process (what it refuses, what it counts), the push config, and
``push setup`` / ``push status`` against the fake Immich 3.1 and 2.7."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from sidecar.cli.main import main
from sidecar.clock import utc_now
from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError, PushSettings, Secret, Settings
from sidecar.engine.store.cursors import LAST_PUSH_KEY
from sidecar.engine.store.database import Store
from sidecar.immich.client import ImmichClient
from sidecar.immich.permissions import PUSH_SETUP
from sidecar.ops.metrics import Metrics
from sidecar.push.receiver import MAX_BODY_BYTES, PushEvent, PushReceiver, parse_push
from sidecar.push.setup import WORKFLOW_NAME, run, setup, status
from tests.e2e_harness import write_config
from tests.fakes.fake_immich import FakeImmich

SECRET = "s3cret-0123456789abcdef"
HEADER = "X-Immich-Sidecar-Secret"
ASSET = "8f6d1e9a-4c3b-4a1e-9f2d-7b5c3a1e0d42"


def immich_body(trigger: str = "AssetMetadataExtraction", asset_id: str = ASSET) -> dict[str, Any]:
    return {"type": "AssetV1", "trigger": trigger, "data": {"asset": {"id": asset_id}}}


# -- the endpoint -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        "AssetV1",
        {"type": "AssetV2", "trigger": "AssetCreate", "data": {"asset": {"id": ASSET}}},
        {"type": "AssetV1", "trigger": "PersonRecognized", "data": {"asset": {"id": ASSET}}},
        {"type": "AssetV1", "trigger": "AssetCreate", "data": {"asset": {"id": "../etc"}}},
        {"type": "AssetV1", "trigger": "AssetCreate", "data": {"asset": {}}},
        {"type": "AssetV1", "trigger": "AssetCreate", "data": []},
    ],
)
def test_unknown_shapes_are_refused(body: object) -> None:
    assert parse_push(body) is None


def test_immichs_shape_names_the_trigger_and_asset() -> None:
    assert parse_push(immich_body("AssetCreate")) == PushEvent("AssetCreate", ASSET)


async def test_the_endpoint_refuses_without_saying_why_and_counts_by_result() -> None:
    metrics = Metrics()
    events: list[PushEvent] = []
    settings = PushSettings(Secret(SECRET), host="127.0.0.1", port=0, header=HEADER)
    receiver = PushReceiver(settings, metrics, events.append)
    await receiver.start()
    url = f"http://127.0.0.1:{receiver.port}/hooks/immich"
    try:
        async with httpx.AsyncClient() as http:
            answers = [
                await http.post(url, json=immich_body()),  # no secret
                await http.post(url, json=immich_body(), headers={HEADER: SECRET[:-1] + "x"}),
                await http.post(url, json=immich_body(), headers={"X-Other": SECRET}),
                await http.post(
                    url, content=b"{" + b" " * MAX_BODY_BYTES + b"}", headers={HEADER: SECRET}
                ),
                await http.post(url, content=b"{not json", headers={HEADER: SECRET}),
                await http.post(url, json={"type": "AssetV1"}, headers={HEADER: SECRET}),
                await http.post(url, json=immich_body(), headers={HEADER: SECRET}),
            ]
    finally:
        await receiver.stop()
    assert [a.status_code for a in answers] == [401, 401, 401, 413, 400, 400, 202]
    assert all(a.content == b"" for a in answers)  # nothing about the reason
    assert events == [PushEvent("AssetMetadataExtraction", ASSET)]
    counts = {
        result: metrics.push_requests.labels(result=result)._value.get()
        for result in ("unauthorized", "too_large", "malformed", "accepted")
    }
    assert counts == {"unauthorized": 3, "too_large": 1, "malformed": 2, "accepted": 1}


# -- config -------------------------------------------------------------------------------------


def config(tmp_path: Path, immich: str = "http://127.0.0.1:9", push: str | None = None) -> Path:
    path = tmp_path / "config.yaml"
    block = push if push is not None else (
        "push:\n  listen: 127.0.0.1:9188\n  secret: ${IMMICH_PUSH_SECRET}\n"
    )  # fmt: skip
    write_config(
        path,
        immich_url=immich,
        state=tmp_path / "state.db",
        rules="- {name: all, targets: [stdout]}",
        extra=block,
    )
    return path


ENV = {"IMMICH_API_KEY": "test-api-key", "IMMICH_PUSH_SECRET": SECRET}


def test_push_is_off_unless_configured_and_fast_polls_are_on_by_default(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path, push=""), ENV)
    assert settings.push is None
    assert (settings.poll.fast_every, settings.poll.fast_for) == (5.0, 180.0)


def test_push_settings_and_the_default_header(tmp_path: Path) -> None:
    settings = load_settings(config(tmp_path), ENV)
    assert settings.push == PushSettings(Secret(SECRET), "127.0.0.1", 9188, HEADER)
    assert SECRET not in repr(settings.push)


def test_push_secret_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "push-secret").write_text(SECRET + "\n")
    settings = load_settings(
        config(tmp_path, push="push:\n  secret_file: push-secret\n  header: X-Hook-Key\n"), ENV
    )
    assert settings.push == PushSettings(Secret(SECRET), "0.0.0.0", 9188, "X-Hook-Key")


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("push:\n  listen: 0.0.0.0:9188\n", "push: needs one of secret or secret_file"),
        ("push:\n  secret: short\n", "push.secret: needs 16+ characters"),
        ("push:\n  secret: ${IMMICH_PUSH_SECRET}\n  header: 'X Bad'\n", "push.header: expected"),
        ("poll:\n  fast: {every: 0s}\n", "must be longer than 0s"),
    ],
)
def test_push_config_errors_name_the_line_and_key(
    tmp_path: Path, block: str, expected: str
) -> None:
    path = config(tmp_path, push="")
    if block.startswith("poll:"):
        path.write_text(path.read_text().replace("poll:\n", "poll:\n  fast: {every: 0s}\n", 1))
    else:
        path.write_text(path.read_text() + block)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)
    assert any(expected in line and ".yaml:" in line for line in caught.value.lines())


# -- push setup and status ----------------------------------------------------------------------


async def setup_twice(settings: Settings, immich: FakeImmich) -> list[str]:
    async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
        first = await setup(settings, client, "http://sidecar.test:9188/hooks/immich")
        second = await setup(settings, client, "http://sidecar.test:9188/hooks/immich")
    return [*first.lines, *second.lines]


async def test_push_setup_twice_leaves_one_workflow_on_immich_3(tmp_path: Path) -> None:
    async with FakeImmich(version=(3, 1, 0)) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        lines = await setup_twice(settings, immich)
        assert lines[0].startswith(f"created workflow '{WORKFLOW_NAME}'")
        assert "nothing changed" in lines[1]
        assert all(SECRET not in line for line in lines)
        (workflow,) = immich.workflows.workflows.values()
        assert workflow["trigger"] == "AssetMetadataExtraction"
        assert workflow["steps"][0]["config"] == {
            "url": "http://sidecar.test:9188/hooks/immich",
            "method": "POST",
            "headerName": HEADER,
            "headerValue": SECRET,
        }
        # A changed URL updates the same workflow.
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            third = await setup(settings, client, "http://other:9188/hooks/immich")
        assert third.lines[0].startswith("updated workflow")
        assert len(immich.workflows.workflows) == 1


async def test_push_setup_on_immich_2_says_there_is_no_webhook_action(tmp_path: Path) -> None:
    async with FakeImmich(version=(2, 7, 5)) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            outcome = await setup(settings, client, None)
        assert not outcome.ok
        assert "2.x" in outcome.lines[0] and "no webhook action" in outcome.lines[0]
        assert immich.workflows.workflows == {}


async def test_push_setup_names_the_missing_key_permission(tmp_path: Path) -> None:
    async with FakeImmich(version=(3, 1, 0), permissions=["asset.read", "workflow.read"]) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            outcome = await setup(settings, client, None)
        assert not outcome.ok
        assert "lacks workflow.create, workflow.update" in outcome.lines[0]


@pytest.mark.parametrize("permissions", [["all"], [*PUSH_SETUP.permissions]])
async def test_push_setup_on_3_1_without_its_core_plugin_names_it(
    tmp_path: Path, permissions: list[str]
) -> None:
    """Issue 28 item 8: the plugin is named with what to do, whether the key may list plugins
    (asked first) or not (Immich's 400 to the create); doctor and push status say the same."""
    from sidecar.doctor.runner import diagnose

    async with FakeImmich(version=(3, 1, 0), core_plugin=False, permissions=permissions) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            outcome = await setup(settings, client, None)
            shown = await status(settings, client, utc_now())
            doctor = io.StringIO()
            await diagnose(settings, doctor, client=client)
        assert not outcome.ok and immich.workflows.workflows == {}
        (line,) = outcome.lines
        assert line.startswith("Immich 3.1.0 cannot push: its core plugin immich-plugin-core")
        assert "official immich-server image" in line and "push setup` again" in line
        assert "Immich: Immich" not in line and "HTTP 400" not in line
        if "all" in permissions:  # the plugins could be listed: everyone says it
            assert not shown.ok and line in shown.lines[0]
            assert "has no webhook step (immich-plugin-core is not loaded)" in shown.lines[0]
            assert line in doctor.getvalue() and "✗ push: Immich 3.1.0 has no webhook" in (
                doctor.getvalue()
            )
        else:  # they could not: the status still sends to push setup, which tells
            assert "push setup" in shown.lines[0]


def test_an_immich_error_is_said_once_not_as_immich_immich(tmp_path: Path, monkeypatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert run(config(tmp_path, immich="http://127.0.0.1:9"), "setup", out=out) == 1
    assert out.getvalue().startswith("Immich GET /api/server/version:")
    assert "Immich: Immich" not in out.getvalue()


async def test_push_status_shows_the_workflow_and_the_last_push(tmp_path: Path) -> None:
    async with FakeImmich(version=(3, 1, 0)) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            from sidecar.clock import utc_now

            before = await status(settings, client, utc_now())
            await setup(settings, client, None)
            store = Store.open(settings.state.path)
            store.set_time(LAST_PUSH_KEY, utc_now())
            store.close()
            after = await status(settings, client, utc_now())
        assert not before.ok and "no workflow" in before.lines[0]
        assert before.lines[1] == "no push has arrived yet"
        assert after.ok and "http://immich-discord-sidecar:9188/hooks/immich" in after.lines[0]
        assert after.lines[1].startswith("last push arrived")


def test_the_cli_runs_push_setup(tmp_path: Path, monkeypatch, capsys) -> None:
    """The command line, against a fake Immich in another thread (the command runs its own
    event loop)."""
    import asyncio
    import threading

    ready = threading.Event()
    holder: dict[str, object] = {}

    def serve() -> None:
        async def main_loop() -> None:
            async with FakeImmich(version=(3, 1, 0)) as immich:
                holder["immich"] = immich
                ready.set()
                while not holder.get("done"):
                    await asyncio.sleep(0.02)

        asyncio.run(main_loop())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(10)
        immich = holder["immich"]
        assert isinstance(immich, FakeImmich)
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        path = config(tmp_path, immich.url)
        assert main(["push", "setup", "-c", str(path), "--url", "http://x:9188/hooks/immich"]) == 0
        assert main(["push", "setup", "-c", str(path), "--url", "http://x:9188/hooks/immich"]) == 0
        assert main(["push", "status", "-c", str(path)]) == 0
        out = capsys.readouterr().out
        assert "created workflow" in out and "nothing changed" in out and SECRET not in out
        assert len(immich.workflows.workflows) == 1
    finally:
        holder["done"] = True
        thread.join(10)


def test_run_prints_what_push_setup_needs_when_push_is_off(tmp_path: Path, monkeypatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    assert run(config(tmp_path, push=""), "setup", out=out) == 1
    assert "push is off" in out.getvalue()


# -- what a push decides --------------------------------------------------------------------------


async def test_a_metadata_push_decides_rules_without_people_only(tmp_path: Path) -> None:
    """Rules without people decide the pushed asset at once (settle does not delay it); a rule
    with ``none:`` still waits settle; a people rule waits for faces; a forged id is unknown."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from sidecar.config.model import PeopleFilter, Rule
    from sidecar.engine.rules.matching import compile_rules
    from sidecar.engine.uploads.poller import Watch
    from sidecar.immich.models import Person
    from sidecar.push.handler import PushHandler

    async with FakeImmich(version=(3, 1, 0)) as immich:
        carol = immich.add_person("Carol")
        rules = (
            Rule("everything", ("log",)),
            Rule("no-carol", ("log",), PeopleFilter(none=("Carol",))),
            Rule("carol", ("log",), PeopleFilter(any=("Carol",))),
        )
        compiled = compile_rules(rules, lambda n: [Person(carol, n)])
        watch = Watch(compiled, lambda _: ("log",), timedelta(hours=48), timedelta(hours=1))
        store = Store.open(tmp_path / "state.db")
        now = datetime.now(UTC)
        store.rule_baselines((r.name for r in rules), since_if_new=now - timedelta(hours=1))
        opened: list[datetime] = []
        metrics = Metrics()
        async with ImmichClient(immich.url, Secret(immich.api_key), metrics) as client:
            handler = PushHandler(
                lambda _owner: [("default", client)], store, metrics, lambda: now,
                lambda _account: watch, asyncio.Lock(), lambda _owner, at: opened.append(at),
                lambda: None,
            )  # fmt: skip
            asset = immich.add_asset(created_at=now)
            handler.offer(PushEvent("AssetMetadataExtraction", asset))
            assert opened == [now]  # fast polls for the people rule
            assert await handler.handle(PushEvent("AssetMetadataExtraction", asset)) == "queued"
            assert await handler.handle(PushEvent("AssetMetadataExtraction", asset)) == "nothing"
            assert await handler.handle(PushEvent("AssetCreate", asset)) == "nothing"
            forged = "0b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"
            assert await handler.handle(PushEvent("AssetMetadataExtraction", forged)) == "unknown"
        assert {(r.rule, r.asset_id) for r in store.rows()} == {("everything", asset)}
        assert store.get_time(LAST_PUSH_KEY) == now
        store.close()


async def test_doctor_has_a_push_line(tmp_path: Path) -> None:
    from sidecar.doctor.runner import diagnose

    async with FakeImmich(version=(3, 1, 0)) as immich:
        settings = load_settings(config(tmp_path, immich.url), ENV)
        async with ImmichClient(immich.url, Secret(immich.api_key), Metrics()) as client:
            before = io.StringIO()
            await diagnose(settings, before, client=client)
            await setup(settings, client, None)
            after = io.StringIO()
            await diagnose(settings, after, client=client)
        assert f"✗ push: no workflow '{WORKFLOW_NAME}'" in before.getvalue()
        assert "push setup" in before.getvalue()
        assert (
            f"✓ push: workflow '{WORKFLOW_NAME}' sends AssetMetadataExtraction" in after.getvalue()
        )


# -- every account (issue 28 item 1) --------------------------------------------------------------


def test_a_push_names_its_uploader_when_immich_does() -> None:
    owner = "5b1c2d3e-4f50-4a6b-8c7d-8e9fa0b1c2d3"
    body = immich_body()
    body["data"]["asset"]["ownerId"] = owner
    assert parse_push(body) == PushEvent("AssetMetadataExtraction", ASSET, owner)
    body["data"]["asset"]["ownerId"] = "not an id"
    assert parse_push(body) == PushEvent("AssetMetadataExtraction", ASSET)  # read through each


async def test_status_and_doctor_show_each_account_and_the_last_push_once(tmp_path: Path) -> None:
    from sidecar.doctor.runner import diagnose
    from sidecar.push.setup import each_account

    async with FakeImmich(version=(3, 1, 0)) as immich:
        immich.add_user("Dad", api_key="dad-key")
        immich.add_user("Mum", api_key="mum-key")
        path = tmp_path / "config.yaml"
        write_config(
            path, immich_url=immich.url, state=tmp_path / "state.db",
            rules="- {name: all, targets: [stdout]}", accounts={"dad": "DAD", "mum": "MUM"},
            extra="push:\n  listen: 127.0.0.1:9188\n  secret: ${IMMICH_PUSH_SECRET}\n",
        )  # fmt: skip
        settings = load_settings(path, {**ENV, "DAD": "dad-key", "MUM": "mum-key"})
        async with ImmichClient(immich.url, Secret("dad-key"), Metrics()) as dad:
            await setup(settings, dad, None)  # Dad's workflow only
        shown = await each_account(settings, "status")
        report = io.StringIO()
        await diagnose(settings, report)
    assert not shown.ok
    assert shown.lines[0].startswith("account dad: push: workflow 'immich-sidecar push' sends")
    assert shown.lines[1] == "account dad: no push has arrived yet"
    assert shown.lines[2].startswith("account mum: push: no workflow")
    assert shown.lines[3:] == ("account mum: no push has arrived yet",)
    assert "✓ push, account dad: workflow" in report.getvalue()
    assert "✗ push, account mum: no workflow" in report.getvalue()
