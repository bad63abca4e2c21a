"""The targets' ``layout``, ``video``, ``links`` and ``shared_links`` keys: their defaults, and
every wrong value as one ``file:line: key: what`` line (issue 26)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.config.loader import load_settings
from sidecar.config.model import ConfigError
from sidecar.targets.discord.channel import ChannelTarget
from sidecar.targets.discord.webhook import WebhookTarget
from sidecar.targets.http_webhook import HttpTarget
from sidecar.targets.presentation import Presentation, SharedLinkOptions, VideoOptions
from tests.config_helpers import ENV, VALID, write_config

EXTERNAL = "  external_url: https://photos.example.com\n"


def config(targets: str, *, external: bool = True) -> str:
    head, rest = VALID.split("discord:\n", 1)
    text = head + (EXTERNAL if external else "") + "discord:\n" + rest
    start = text.index("targets:\n")
    end = text.index("rules:\n")
    return text[:start] + "targets:\n" + targets + text[end:]


TARGETS = """\
  family: {channel_id: "123456789012345678", links: shared, shared_links: {expire: 7d}}
  grandma: {webhook_url: "${GRANDMA_WEBHOOK_URL}", layout: embeds, links: app, video: {max_mb: 4}}
  stdout: {console: true}
"""


def test_defaults_and_set_values(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, config(TARGETS)), ENV)
    family = settings.targets["family"]
    grandma = settings.targets["grandma"]
    assert isinstance(family, ChannelTarget) and isinstance(grandma, WebhookTarget)
    assert family.presentation == Presentation(
        layout="gallery",
        video=VideoOptions(attach=True, max_mb=8),
        links="shared",
        shared_links=SharedLinkOptions(expire=7 * 86400, download=False, metadata=False),
    )
    assert grandma.presentation.layout == "embeds" and grandma.presentation.links == "app"
    assert grandma.presentation.video.max_bytes == 4 * 1024 * 1024
    plain = load_settings(write_config(tmp_path, VALID), ENV).targets["family"]
    assert isinstance(plain, ChannelTarget)
    assert plain.presentation == Presentation()  # gallery, videos up to 8 MB, Immich links


def test_a_json_webhook_may_share(tmp_path: Path) -> None:
    targets = TARGETS.replace(
        "  stdout: {console: true}\n",
        "  stdout: {console: true}\n  hook: {http: {url: https://n8n.example/x}, links: shared}\n",
    )
    settings = load_settings(write_config(tmp_path, config(targets)), ENV)
    hook = settings.targets["hook"]
    assert isinstance(hook, HttpTarget) and hook.presentation.links == "shared"


@pytest.mark.parametrize(
    ("old", "new", "where", "message"),
    [
        (
            "links: shared, ",
            "links: shared, ",
            "targets.family.links",
            "links: shared needs immich.external_url",
        ),
        (
            "layout: embeds",
            "layout: grid",
            "targets.grandma.layout",
            "expected one of gallery, embeds, got 'grid'",
        ),
        ("max_mb: 4", "max_mb: 25", "targets.grandma.video.max_mb", "10"),
        ("expire: 7d", "expire: 0s", "targets.family.shared_links.expire", "must expire"),
        (
            "links: app",
            "links: everywhere",
            "targets.grandma.links",
            "expected one of immich, app, shared, none",
        ),
        (
            "stdout: {console: true}",
            "stdout: {console: true, layout: gallery}",
            "targets.stdout.layout",
            "layout is for Discord targets",
        ),
        (
            "stdout: {console: true}",
            "stdout: {console: true, links: app}",
            "targets.stdout.links",
            "links is for Discord targets and JSON webhooks",
        ),
        (
            "stdout: {console: true}",
            "stdout: {http: {url: https://n8n.example/x}, links: app}",
            "targets.stdout.links",
            "a JSON webhook's links is immich (the default) or shared",
        ),
        (
            "stdout: {console: true}",
            "stdout: {http: {url: https://n8n.example/x}, video: {attach: false}}",
            "targets.stdout.video",
            "video is for Discord targets",
        ),
    ],
)
def test_wrong_values_name_the_line_and_the_key(
    tmp_path: Path, old: str, new: str, where: str, message: str
) -> None:
    text = config(TARGETS.replace(old, new), external="external_url" not in message)
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, ENV)
    lines = caught.value.lines()
    line = next(n for n, row in enumerate(text.splitlines(), 1) if new.split(",")[0] in row)
    assert any(row.startswith(f"{path}:{line}: {where}: ") and message in row for row in lines), (
        lines
    )
