"""The status page in a real headless Chromium, served by the real sidecar process against the
fake Immich: it loads with the accounts, the rules and the last delivery, under its CSP and
without a console error; the explain box answers; thumbnails need the password (401 without).

Screenshots go to ``$SIDECAR_TEST_ARTIFACTS`` (default ``build/test-artifacts/`` in the repo):
``status-page.png`` (desktop, light) and ``status-page-phone-dark.png`` (390 px wide, dark).
Outside CI the test is skipped when Chromium is missing; in CI (``CI`` set) it fails instead,
as ``.ci/run`` installs it.
"""

from __future__ import annotations

import base64
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.browser import chromium, chromium_path
from tests.e2e_harness import REPO, SidecarProcess, free_port, write_config
from tests.fakes.fake_immich import FakeImmich

pytestmark = pytest.mark.e2e

PASSWORD = "family-photos-only"
ARTIFACTS = Path(os.environ.get("SIDECAR_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts")
RULES = """\
- name: kids
  people: {any: [Alice]}
  targets: [stdout]
- name: holiday
  albums: {any: [Holiday]}
  targets: [stdout]
"""


def needs_chromium() -> None:
    if chromium_path() is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("chromium is missing: .ci/run installs Debian's chromium package")
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")


@pytest.fixture
async def sidecar_with_page(tmp_path):
    async with FakeImmich() as immich:
        alice = immich.add_person("Alice")
        immich.add_album("Holiday")
        secret = tmp_path / "ui-password"
        secret.write_text(PASSWORD + "\n")
        config, ui_port, metrics_port = tmp_path / "config.yaml", free_port(), free_port()
        write_config(
            config,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            rules=RULES,
            metrics_port=metrics_port,
            extra=f"ui:\n  listen: 127.0.0.1:{ui_port}\n  password_file: {secret}\n"
            "  pictures: true\n",
        )
        sidecar = SidecarProcess(config, {"IMMICH_API_KEY": immich.api_key}, metrics_port)
        await sidecar.start()
        try:
            photo = immich.add_asset(
                created_at=datetime.now(UTC), people=[alice], file_name="beach.jpg"
            )
            await sidecar.wait_for_delivery(photo)
            yield immich, photo, f"http://127.0.0.1:{ui_port}"
        finally:
            assert await sidecar.stop() == 0


async def test_the_status_page_in_chromium(sidecar_with_page):
    needs_chromium()
    immich, photo, base = sidecar_with_page
    auth = "Basic " + base64.b64encode(f"anyone:{PASSWORD}".encode()).decode()
    started = time.monotonic()
    async with chromium() as page:
        refused = await page.load(f"{base}/thumbnails/{photo}")
        assert refused["status"] == 401
        assert (await page.load(f"{base}/"))["status"] == 401
        await page.send("Network.setExtraHTTPHeaders", headers={"Authorization": auth})
        mark = len(page.events)
        response = await page.load(f"{base}/")
        assert response["status"] == 200
        headers = {k.lower(): v for k, v in response["headers"].items()}
        assert headers["content-security-policy"] == "default-src 'self'"
        text = await page.evaluate("document.body.innerText")
        assert "default" in await page.evaluate("document.querySelector('#accounts').innerText")
        rules = await page.evaluate("document.querySelector('#rules').innerText")
        assert "kids" in rules and "holiday" in rules
        deliveries = await page.evaluate("document.querySelector('#deliveries').innerText")
        assert "beach.jpg" in deliveries and "kids → stdout" in deliveries
        # the thumbnail loaded, through the password; it is loading="lazy", which the load
        # event does not wait for: each image's own load (or error) is awaited first
        loaded = await page.evaluate(
            "Promise.all(Array.from(document.images).map(i => i.complete ? i : new Promise("
            "done => { i.onload = i.onerror = () => done(i); })))"
            ".then(images => images.map(i => i.naturalWidth > 0))"
        )
        assert loaded == [True]
        size = await page.screenshot(ARTIFACTS / "status-page.png")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=390,
            height=844,
            deviceScaleFactor=2,
            mobile=True,
        )
        await page.send(
            "Emulation.setEmulatedMedia",
            features=[{"name": "prefers-color-scheme", "value": "dark"}],
        )
        await page.screenshot(ARTIFACTS / "status-page-phone-dark.png")
        wide = await page.evaluate("document.documentElement.scrollWidth")
        assert wide <= 390, "the page scrolls sideways on a phone"
        # the explain box
        link = f"https://photos.example.test/photos/{photo}"
        after = len(page.events)
        await page.evaluate(
            f"document.querySelector('#asset').value = {link!r};"
            "document.querySelector('#explain form').requestSubmit()"
        )
        await page.wait_for("Page.loadEventFired", after)
        answer = await page.evaluate("document.querySelector('#explain-answer').innerText")
        assert "rule kids" in answer and "posted (stdout): at " in answer
        assert "album rule holiday" in answer and "will not post: not in album Holiday" in answer
        # after the page loaded with the password (the 401s before are the test's own)
        assert page.console_errors(after=mark) == []
    took = time.monotonic() - started
    for secret in (PASSWORD, immich.api_key):
        assert secret not in text
    print(f"\nstatus page in Chromium: {took:.1f}s; screenshot {size} bytes in {ARTIFACTS}")
