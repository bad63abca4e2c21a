"""``dry-run`` says what each target would send (issue 26): its layout, each message's files and
sizes, whether a video would be attached or why not, and the shared links it would make; it
makes no link, fetches no video and sends nothing."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sidecar.engine.dry_run import dry_run
from tests.e2e_harness import free_port, write_config
from tests.fakes.fake_immich import FakeImmich

MIB = 1024 * 1024


async def test_dry_run_names_the_layout_the_files_and_the_links(tmp_path: Path, monkeypatch):
    async with FakeImmich() as immich:
        monkeypatch.setenv("IMMICH_API_KEY", immich.api_key)
        monkeypatch.setenv("HOOK", "https://discord.example/api/webhooks/1/token")
        alice = immich.add_person("Alice")
        when = datetime.now(UTC) - timedelta(hours=1)
        immich.add_asset(
            created_at=when, people=[alice], preview_size=300 * 1024, file_name="beach.jpg"
        )
        for name, size in (("small.mp4", 3 * MIB), ("large.mp4", 30 * MIB)):
            immich.add_asset(
                type="VIDEO", created_at=when, people=[alice], video_size=size, file_name=name
            )
        path = tmp_path / "config.yaml"
        write_config(
            path,
            immich_url=immich.url,
            state=tmp_path / "state.db",
            metrics_port=free_port(),
            rules="- name: kids\n  people: {any: [Alice]}\n  targets: [family, hook, stdout]",
            targets=(
                "family: {webhook_url: '${HOOK}', links: shared, shared_links: {expire: 7d}}\n"
                "hook: {http: {url: 'https://n8n.example/x'}, links: shared}\n"
                "stdout: {console: true}"
            ),
        )
        out = io.StringIO()
        assert await asyncio.to_thread(dry_run, path, 24 * 3600.0, out) == 0
        text = out.getvalue()
        assert immich.api_requests("POST", "/api/shared-links") == []
    lines = text.splitlines()
    at = lines.index("target family (gallery, links: shared), rule kids: 1 message")
    message = lines[at + 1]
    assert message.startswith("    message 1: 3 deliveries, 3 files, ")
    assert "beach.jpg: 300 KB" in message
    assert "small.mp4: the video, 3.0 MB" in message
    assert "large.mp4: its preview, 1 KB (too large to attach: 30 MB)" in message
    assert message.endswith(
        "; an Immich shared link would be made (expires after 7d; downloads off, metadata off)"
    )
    assert (
        "target hook (JSON webhook), rule kids: one POST of 3 assets; an Immich shared link "
        "would be made for it (links.shared)" in lines
    )
    assert "target stdout, rule kids: 3 deliveries" in lines
    assert not (tmp_path / "state.db").exists()
