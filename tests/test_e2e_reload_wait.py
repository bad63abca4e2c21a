"""A reload that waits for Immich, end to end: the real ``immich-sidecar run`` is given a rule
for someone Immich has not named yet; once the person is named in Immich (as its web app does
it, ``PUT /api/people/{id}``), the change applies within two polls, with no change to the file."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

import httpx
import pytest

from tests.e2e_harness import SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

RULES = textwrap.dedent("""\
    - name: family
      people: {any: [Alice]}
      targets: [stdout]
    """)


async def test_a_reload_waiting_for_a_person_applies_within_two_polls_of_naming_them(tmp_path):
    async with FakeImmich(version=(2, 7, 5)) as immich:
        immich.add_person("Alice")
        carol = immich.add_person("")  # Immich found her face; nobody named her yet
        config, port = tmp_path / "config.yaml", free_port()

        def write(rules: str) -> None:
            write_config(
                config, immich_url=immich.url, state=tmp_path / "state.db", rules=rules,
                metrics_port=port,
            )  # fmt: skip

        write(RULES)
        sidecar = SidecarProcess(config, {"IMMICH_API_KEY": immich.api_key}, port)
        await sidecar.start()
        try:
            await sidecar.wait_for_polls(1)
            write(RULES.replace("[Alice]", "[Alice, Carol]"))
            await sidecar.wait_for_log(
                "waiting for Carol in Immich; fix it in Immich or in the file"
            )
            assert (await sidecar.readyz()).status_code == 503
            assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 0
            written = config.read_bytes()
            await sidecar.wait_for_polls(2)  # tried again at each: said once
            assert sum("waiting for Carol" in line for line in sidecar.stderr) == 1

            async with httpx.AsyncClient(headers={"x-api-key": immich.api_key}) as http:
                named = await http.put(f"{immich.url}/api/people/{carol}", json={"name": "Carol"})
            assert named.status_code == 200
            polls_before = await sidecar.successful_polls()
            await sidecar.wait_for_log("Carol in Immich now: the config change applies")
            assert await sidecar.successful_polls() - polls_before <= 2

            photo = immich.add_asset(created_at=datetime.now(UTC), people=[carol])
            await sidecar.wait_for_delivery(photo)
            [line] = sidecar.delivered(photo)
            assert line["rule"] == "family" and line["people"] == ["Carol"]
            assert (await sidecar.readyz()).status_code == 200
            assert await sidecar.metric("immich_sidecar_config_last_reload_successful") == 1
            assert config.read_bytes() == written  # nothing but Immich changed
        finally:
            assert await sidecar.stop() == 0
